import { Injectable, Logger } from '@nestjs/common';
import { OperationRepository, type Superseded } from '../downloads/operation.repository.js';
import { OPERATION_CANCELLED, OPERATION_SETTLED, READY_LOOKUPS_STALE } from '../downloads/operation-events.js';
import { PackageObjects } from '../downloads/package-objects.js';
import { AppConfig } from '../platform/config/app-config.js';
import { AppError, type ErrorDetail } from '../platform/errors.js';
import { Announcer } from '../platform/redis/announcer.js';
import { CatalogueRepository, isFinished, type JobStatus, type JobWithTasks, type RunFields, type Task, type Transaction } from './catalogue.repository.js';
import { EXTERNAL_ID_PATTERN, EXTERNAL_ID_RULE } from './ids.js';
import { mapConcurrently } from '../utils/map-concurrently.js';
import { checkSources } from './source-rules.js';


export interface TaskRegistration {
  taskId: string;
  status: JobStatus;
  inputs: string[];
  outputs: string[];
}

export interface JobRegistration {
  workflowId: string;
  jobId: string;
  status: JobStatus;
  inputs: string[];
  outputs: string[];
  /** When the run finished; by default kept from an earlier registration, else now (finished runs only). */
  finishedAt?: Date;
  /** The job's tasks, replacing those registered before; undefined leaves them as they are. */
  tasks?: TaskRegistration[];
}

/** A job as the catalogue API and the CLI answer it. */
export interface JobView {
  workflow_id: string;
  job_id: string;
  organisation_id: string;
  status: JobStatus;
  inputs: string[];
  outputs: string[];
  finished_at: string | null;
  created_at: string;
  updated_at: string;
  tasks: Array<{ task_id: string; status: JobStatus; inputs: string[]; outputs: string[]; finished_at: string | null; created_at: string; updated_at: string }>;
}

const NOTHING_SUPERSEDED: Superseded = { operationIds: [], objects: [] };
/** Superseded packages deleted at once: thousands of tasks' packages go in rounds, not one round trip each. */
const PACKAGE_DELETIONS_AT_ONCE = 16;

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((value, index) => value === b[index]);

/**
 * Registers what the service packages: workflows, jobs and their tasks, from the catalogue API and the CLI
 * alike. A registration is one transaction; when it changes a job (status, sources, finished_at, its tasks),
 * the live operations of the job and of the changed tasks are superseded in that same transaction (expired,
 * their packages handed to the deletions), so that a PUT after it never gets a package of the old job.
 */
@Injectable()
export class CatalogueService {
  private readonly logger = new Logger(CatalogueService.name);

  constructor(
    private readonly catalogue: CatalogueRepository,
    private readonly operations: OperationRepository,
    private readonly packageObjects: PackageObjects,
    private readonly announcer: Announcer,
    private readonly config: AppConfig,
  ) {}

  /** Creates the workflow for the organisation; 409 when another organisation owns it. */
  async registerWorkflow(workflowId: string, organisationId: string): Promise<{ workflow_id: string; organisation_id: string; created_at: string }> {
    const ownerId = await this.requireOrganisation(organisationId);
    const workflow = await this.catalogue.ensureWorkflow(workflowId, ownerId);
    if (workflow.organisationId !== ownerId) throw new AppError('CONFLICT', `workflow ${workflowId} belongs to another organisation`);
    return { workflow_id: workflow.id, organisation_id: workflow.organisationId, created_at: workflow.createdAt.toISOString() };
  }

  /**
   * Creates or replaces a job (and its tasks). Idempotent: the same registration twice changes nothing. The
   * workflow must exist, and belong to the `owner` when one is given (the CLI creates it when new).
   */
  async registerJob(registration: JobRegistration, owner?: { organisationId: string; createWorkflow: boolean }): Promise<JobView> {
    this.validate(registration);
    const ownerId = owner && (await this.requireOrganisation(owner.organisationId));
    if (ownerId && owner?.createWorkflow) await this.catalogue.ensureWorkflow(registration.workflowId, ownerId);
    const workflow = await this.catalogue.findWorkflow(registration.workflowId);
    if (!workflow) throw new AppError('NOT_FOUND', `no workflow ${registration.workflowId}`);
    if (ownerId && workflow.organisationId !== ownerId) throw new AppError('FORBIDDEN', `workflow ${registration.workflowId} belongs to another organisation`);

    const { workflowId, jobId } = registration;
    const { view, superseded } = await this.catalogue.inJobTransaction(workflowId, jobId, async (tx) => {
      const existing = await this.catalogue.findJobWithTasks(workflowId, jobId, tx);
      const fields = runFields(registration, existing, registration.finishedAt);
      const tasks = await this.writeTasks(tx, registration, existing, fields);
      // A task added is a change of the job as much as one changed or removed (the contract counts its tasks among
      // what a job is), even though the job's own ZIP holds only the job's sources.
      const jobChanged = !existing || !sameRun(existing, fields) || tasks.added.length > 0 || tasks.changed.length > 0 || tasks.removed.length > 0;
      await this.catalogue.writeJob(tx, workflowId, jobId, fields, jobChanged);
      const superseded = existing && jobChanged
        ? await this.operations.supersedeWithin(tx, { workflowId, jobId, job: true, taskIds: [...tasks.changed, ...tasks.removed] }, this.config.S3_BUCKET)
        : NOTHING_SUPERSEDED;
      // After their operations are superseded: the cascade takes those rows with the tasks.
      await this.catalogue.deleteTasks(tx, workflowId, jobId, tasks.removed);
      return { view: toJobView((await this.catalogue.findJobWithTasks(workflowId, jobId, tx))!), superseded };
    });
    await this.afterChange(workflowId, jobId, superseded);
    return view;
  }

  async getJob(workflowId: string, jobId: string): Promise<JobView> {
    const job = await this.catalogue.findJobWithTasks(workflowId, jobId);
    if (!job) throw new AppError('NOT_FOUND', `no job ${jobId} in workflow ${workflowId}`);
    return toJobView(job);
  }

  /** Removes the job, its tasks, their operations and their packages. */
  async deleteJob(workflowId: string, jobId: string): Promise<{ workflow_id: string; job_id: string; deleted: true }> {
    const superseded = await this.catalogue.inJobTransaction(workflowId, jobId, async (tx) => {
      const existing = await this.catalogue.findJobWithTasks(workflowId, jobId, tx);
      if (!existing) throw new AppError('NOT_FOUND', `no job ${jobId} in workflow ${workflowId}`);
      const taskIds = existing.tasks.map((task) => task.id);
      const objects = await this.operations.supersedeWithin(tx, { workflowId, jobId, job: true, taskIds }, this.config.S3_BUCKET);
      await this.catalogue.deleteJob(tx, workflowId, jobId);
      return objects;
    });
    await this.afterChange(workflowId, jobId, superseded);
    return { workflow_id: workflowId, job_id: jobId, deleted: true };
  }

  /**
   * Writes the registration's tasks (a new job's row is written first: tasks refer to it); answers which tasks
   * are new, which earlier ones changed and which are no longer listed, for the caller to supersede and remove.
   */
  private async writeTasks(tx: Transaction, registration: JobRegistration, existing: JobWithTasks | null, jobFields: RunFields): Promise<{ added: string[]; changed: string[]; removed: string[] }> {
    if (registration.tasks === undefined) return { added: [], changed: [], removed: [] };
    if (!existing) await this.catalogue.writeJob(tx, registration.workflowId, registration.jobId, jobFields, true);
    const before = new Map((existing?.tasks ?? []).map((task) => [task.id, task]));
    // New and changed tasks are written in one statement each: a registration of thousands of tiles holds the
    // job's row (and PUTs waiting for it) for a few round trips, not one per tile.
    const added: Array<{ taskId: string; fields: RunFields }> = [];
    const rewritten: Array<{ taskId: string; fields: RunFields }> = [];
    for (const task of registration.tasks) {
      const previous = before.get(task.taskId);
      before.delete(task.taskId);
      const fields = runFields(task, previous ?? null);
      if (!previous) added.push({ taskId: task.taskId, fields });
      else if (!sameRun(previous, fields)) rewritten.push({ taskId: task.taskId, fields });
    }
    await this.catalogue.createTasks(tx, registration.workflowId, registration.jobId, added);
    await this.catalogue.updateTasks(tx, registration.workflowId, registration.jobId, rewritten);
    return { added: added.map((task) => task.taskId), changed: rewritten.map((task) => task.taskId), removed: [...before.keys()] };
  }

  /**
   * API processes forget their ready lookups before the superseded packages go, which can take seconds. The
   * builds of superseded operations stop (as for a cancel), and requests held on them (`Prefer: wait`) answer
   * now rather than at their deadline. The packages are deleted a few at a time; what S3 does not confirm, the
   * sweep deletes.
   */
  private async afterChange(workflowId: string, jobId: string, { operationIds, objects }: Superseded): Promise<void> {
    await this.announcer.announce(READY_LOOKUPS_STALE, `${workflowId}/${jobId}`);
    await this.announcer.announceEach(OPERATION_CANCELLED, operationIds);
    await this.announcer.announceEach(OPERATION_SETTLED, operationIds);
    await mapConcurrently(objects, PACKAGE_DELETIONS_AT_ONCE, (object) => this.packageObjects.deleteListed(object));
  }

  /**
   * The organisation's id as Postgres stores it. A UUID may be given in upper case; Postgres finds it, but
   * answers it in lower case, so comparisons with stored ids are made with what it answers.
   */
  private async requireOrganisation(organisationId: string): Promise<string> {
    const organisation = /^[0-9a-f-]{36}$/i.test(organisationId) ? await this.catalogue.findOrganisation(organisationId) : null;
    if (!organisation) {
      throw new AppError('INVALID_REQUEST', 'no such organisation', [{ field: 'organisation_id', message: `no organisation with id ${organisationId}` }]);
    }
    return organisation.id;
  }

  /** Ids, sources and the consistency of finished_at; every problem at once, each naming its field. */
  private validate(registration: JobRegistration): void {
    const problems: ErrorDetail[] = [];
    for (const [field, value] of [['workflow_id', registration.workflowId], ['job_id', registration.jobId]] as const) {
      if (!EXTERNAL_ID_PATTERN.test(value)) problems.push({ field, message: `${field} must be ${EXTERNAL_ID_RULE}` });
    }
    if (registration.finishedAt && !isFinished(registration.status)) {
      problems.push({ field: 'finished_at', message: 'must be absent while the job is queued or running' });
    }
    const sources = [...checkSources('inputs', registration.inputs, this.config), ...checkSources('outputs', registration.outputs, this.config)];
    const seen = new Set<string>();
    (registration.tasks ?? []).forEach((task, index) => {
      if (!EXTERNAL_ID_PATTERN.test(task.taskId)) problems.push({ field: `tasks[${index}].task_id`, message: `task_id must be ${EXTERNAL_ID_RULE}` });
      if (seen.has(task.taskId)) problems.push({ field: `tasks[${index}].task_id`, message: `task ${task.taskId} is listed twice` });
      seen.add(task.taskId);
      sources.push(...checkSources(`tasks[${index}].inputs`, task.inputs, this.config), ...checkSources(`tasks[${index}].outputs`, task.outputs, this.config));
    });
    if (problems.length) throw new AppError('INVALID_REQUEST', `invalid registration: ${problems.map((p) => p.field).join(', ')}`, [...problems, ...sources]);
    if (sources.length) throw new AppError('INVALID_SOURCE', `invalid sources: ${sources.map((p) => p.field).join(', ')}`, sources);
  }
}

/** The stored fields of a registered run: a run that stays finished keeps when it finished. */
function runFields(run: { status: JobStatus; inputs: string[]; outputs: string[] }, existing: { status: JobStatus; finishedAt: Date | null } | null, finishedAt?: Date): RunFields {
  const keptFinish = existing && isFinished(existing.status) ? existing.finishedAt : null;
  return {
    status: run.status,
    inputs: [...run.inputs],
    outputs: [...run.outputs],
    finishedAt: isFinished(run.status) ? (finishedAt ?? keptFinish ?? new Date()) : null,
  };
}

function sameRun(stored: { status: JobStatus; inputs: string[]; outputs: string[]; finishedAt: Date | null }, fields: RunFields): boolean {
  return (
    stored.status === fields.status &&
    sameList(stored.inputs, fields.inputs) &&
    sameList(stored.outputs, fields.outputs) &&
    (stored.finishedAt?.getTime() ?? null) === (fields.finishedAt?.getTime() ?? null)
  );
}

function toTaskView(task: Task) {
  return {
    task_id: task.id,
    status: task.status,
    inputs: task.inputs,
    outputs: task.outputs,
    finished_at: task.finishedAt?.toISOString() ?? null,
    created_at: task.createdAt.toISOString(),
    updated_at: task.updatedAt.toISOString(),
  };
}

export function toJobView(job: JobWithTasks): JobView {
  return {
    workflow_id: job.workflowId,
    job_id: job.id,
    organisation_id: job.workflow.organisationId,
    status: job.status,
    inputs: job.inputs,
    outputs: job.outputs,
    finished_at: job.finishedAt?.toISOString() ?? null,
    created_at: job.createdAt.toISOString(),
    updated_at: job.updatedAt.toISOString(),
    tasks: job.tasks.map(toTaskView),
  };
}
