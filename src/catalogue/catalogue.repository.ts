import { Injectable } from '@nestjs/common';
import type { Job, JobStatus, Organisation, Prisma, Task, Workflow } from '../generated/prisma/client.js';
import { PrismaService } from '../platform/prisma/prisma.service.js';

export type { Job, JobStatus, Task };
export type JobWithTasks = Job & { tasks: Task[]; workflow: Workflow };
export type Transaction = Prisma.TransactionClient;

/** The advisory-lock key space of job registrations (the two-key form: the job's name hashes into the second). */
const JOB_LOCK_SPACE = 0x6a6f62;
/** A registration writes up to MAX_TASKS (10,000) tasks in one transaction, in a few statements; Prisma's default of 5 s is for short ones. */
const REGISTRATION_TIMEOUT_MS = 60_000;

/** Rows per INSERT of new tasks: 8 parameters each, well under Postgres's 65,535 and Prisma's 32,767. */
const TASKS_PER_INSERT = 2_000;

const FINISHED: ReadonlySet<JobStatus> = new Set<JobStatus>(['completed', 'failed', 'cancelled']);

/** A job run (or task) is finished, and downloadable, once completed, failed or cancelled. */
export function isFinished(status: JobStatus): boolean {
  return FINISHED.has(status);
}

/** The fields of a job or task that a registration sets. */
export interface RunFields {
  status: JobStatus;
  inputs: string[];
  outputs: string[];
  finishedAt: Date | null;
}

/** Organisations, their workflows and the job runs and tasks in them: what the service is asked to package. */
@Injectable()
export class CatalogueRepository {
  constructor(private readonly prisma: PrismaService) {}

  createOrganisation(name: string): Promise<Organisation> {
    return this.prisma.organisation.create({ data: { name } });
  }

  async hasOrganisations(): Promise<boolean> {
    return (await this.prisma.organisation.findFirst({ select: { id: true } })) !== null;
  }

  findOrganisation(id: string): Promise<Organisation | null> {
    return this.prisma.organisation.findUnique({ where: { id } });
  }

  findWorkflow(id: string): Promise<Workflow | null> {
    return this.prisma.workflow.findUnique({ where: { id } });
  }

  /**
   * Creates the workflow for the organisation unless it exists; answers it as stored (maybe another's). One
   * INSERT ... ON CONFLICT DO NOTHING: Prisma's upsert with nothing to update is a SELECT then an INSERT, and two
   * registrations of a new workflow at once (an engine retrying a timed-out call) failed one with P2002.
   */
  async ensureWorkflow(id: string, organisationId: string): Promise<Workflow> {
    await this.prisma.$executeRaw`INSERT INTO workflows (id, organisation_id) VALUES (${id}, ${organisationId}::uuid) ON CONFLICT (id) DO NOTHING`;
    return this.prisma.workflow.findUniqueOrThrow({ where: { id } });
  }

  findJob(workflowId: string, jobId: string): Promise<Job | null> {
    return this.prisma.job.findUnique({ where: { workflowId_id: { workflowId, id: jobId } } });
  }

  findTask(workflowId: string, jobId: string, taskId: string): Promise<Task | null> {
    return this.prisma.task.findUnique({ where: { workflowId_jobId_id: { workflowId, jobId, id: taskId } } });
  }

  findJobWithTasks(workflowId: string, jobId: string, client: Transaction = this.prisma): Promise<JobWithTasks | null> {
    return client.job.findUnique({
      where: { workflowId_id: { workflowId, id: jobId } },
      include: { tasks: { orderBy: { id: 'asc' } }, workflow: true },
    });
  }

  /**
   * Runs `work` in one transaction, one registration of a job at a time. The job's row lock alone does not do
   * it for a job not created yet (there is no row to lock: two first registrations each saw no job and wrote
   * the union of their tasks), so a lock on the job's name comes first. The row is locked too: a PUT recording
   * a new operation holds it FOR SHARE (OperationRepository.createPending).
   */
  inJobTransaction<T>(workflowId: string, jobId: string, work: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.prisma.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${JOB_LOCK_SPACE}::int, hashtext(${workflowId} || '/' || ${jobId}))`;
      await tx.$queryRaw`SELECT 1 FROM jobs WHERE workflow_id = ${workflowId} AND job_id = ${jobId} FOR UPDATE`;
      return work(tx);
    }, { timeout: REGISTRATION_TIMEOUT_MS });
  }

  /** Writes a job's fields; `changed` moves updated_at, which ends the standing of its permanent failures. */
  async writeJob(tx: Transaction, workflowId: string, jobId: string, fields: RunFields, changed: boolean): Promise<void> {
    const data = { ...fields, ...(changed ? { updatedAt: new Date() } : {}) };
    await tx.job.upsert({ where: { workflowId_id: { workflowId, id: jobId } }, create: { workflowId, id: jobId, ...data }, update: data });
  }

  /**
   * Rewrites the tasks whose registration changed, in one statement whatever their number. Their updated_at is
   * the time of the write, as for the job (now() would be the transaction's start, before its waits for locks).
   */
  async updateTasks(tx: Transaction, workflowId: string, jobId: string, tasks: Array<{ taskId: string; fields: RunFields }>): Promise<void> {
    if (!tasks.length) return;
    const rows = JSON.stringify(tasks.map(({ taskId, fields }) => ({
      task_id: taskId, status: fields.status, inputs: fields.inputs, outputs: fields.outputs, finished_at: fields.finishedAt?.toISOString() ?? null,
    })));
    await tx.$executeRaw`
      UPDATE tasks AS t
         SET status = u.status::job_status, inputs = u.inputs, outputs = u.outputs, finished_at = u.finished_at, updated_at = ${new Date()}
        FROM jsonb_to_recordset(${rows}::jsonb) AS u(task_id text, status text, inputs text[], outputs text[], finished_at timestamptz)
       WHERE t.workflow_id = ${workflowId} AND t.job_id = ${jobId} AND t.task_id = u.task_id`;
  }

  /**
   * Writes new tasks, a few thousand per statement. Left to itself, Prisma splits a larger createMany at the
   * bind-parameter limit and sends the pieces at once on the transaction's one connection, which pg queues
   * (and pg 9 will refuse).
   */
  async createTasks(tx: Transaction, workflowId: string, jobId: string, tasks: Array<{ taskId: string; fields: RunFields }>): Promise<void> {
    for (let start = 0; start < tasks.length; start += TASKS_PER_INSERT) {
      const batch = tasks.slice(start, start + TASKS_PER_INSERT);
      await tx.task.createMany({ data: batch.map(({ taskId, fields }) => ({ workflowId, jobId, id: taskId, ...fields })) });
    }
  }

  async deleteTasks(tx: Transaction, workflowId: string, jobId: string, taskIds: string[]): Promise<void> {
    if (taskIds.length) await tx.task.deleteMany({ where: { workflowId, jobId, id: { in: taskIds } } });
  }

  /** Removes the job with its tasks and operations (the foreign keys cascade). */
  async deleteJob(tx: Transaction, workflowId: string, jobId: string): Promise<void> {
    await tx.job.delete({ where: { workflowId_id: { workflowId, id: jobId } } });
  }
}
