import { Injectable } from '@nestjs/common';
import { AppConfig } from '../platform/config/app-config.js';
import { EXTERNAL_ID_PATTERN, EXTERNAL_ID_RULE, UUID_PATTERN } from '../catalogue/ids.js';
import { toOperationRecord } from '../downloads/operation-record.js';
import { AppError } from '../platform/errors.js';
import { JobStatus, OperationStatus } from '../generated/prisma/enums.js';
import { CatalogueRepository } from '../catalogue/catalogue.repository.js';
import { CatalogueService, type JobView } from '../catalogue/catalogue.service.js';
import { OperationRepository } from '../downloads/operation.repository.js';

export interface RegisterJobRequest {
  organisationId: string;
  workflowId: string;
  jobId: string;
  status?: string;
  /** Sources of the inputs; by default the job's conventional prefix in S3_ASSETS_BUCKET. */
  inputs?: string[];
  outputs?: string[];
}


/** What operators do from the CLI: organisations, job registration, listing operations. */
@Injectable()
export class OperatorService {
  constructor(
    private readonly catalogue: CatalogueRepository,
    private readonly registrations: CatalogueService,
    private readonly operations: OperationRepository,
    private readonly config: AppConfig,
  ) {}

  async createOrganisation(name: string): Promise<{ id: string; name: string }> {
    if (!name.trim()) throw new AppError('INVALID_ARGUMENT', 'organisation name must not be empty');
    const organisation = await this.catalogue.createOrganisation(name.trim());
    return { id: organisation.id, name: organisation.name };
  }

  async requireOrganisation(id: string): Promise<void> {
    if (!UUID_PATTERN.test(id) || !(await this.catalogue.findOrganisation(id))) {
      throw new AppError('NOT_FOUND', `no organisation with id ${id}`);
    }
  }

  /**
   * Registers a job through the same CatalogueService as the catalogue API, with the same source rules; the
   * workflow is created for the organisation when new. The job's tasks, if any, are left as they are.
   */
  async registerJob(request: RegisterJobRequest): Promise<JobView> {
    for (const [name, value] of [['workflow', request.workflowId], ['job', request.jobId]] as const) {
      if (!EXTERNAL_ID_PATTERN.test(value)) throw new AppError('INVALID_ARGUMENT', `--${name} must be ${EXTERNAL_ID_RULE}`);
    }
    const status = request.status ?? 'completed';
    if (!Object.hasOwn(JobStatus, status)) {
      throw new AppError('INVALID_ARGUMENT', `--status must be one of ${Object.keys(JobStatus).join(', ')}`);
    }
    await this.requireOrganisation(request.organisationId);
    const defaults = this.defaultSources(request.workflowId, request.jobId);
    return this.registrations.registerJob(
      {
        workflowId: request.workflowId,
        jobId: request.jobId,
        status: status as JobStatus,
        inputs: request.inputs?.length ? request.inputs : [defaults.inputs],
        outputs: request.outputs?.length ? request.outputs : [defaults.outputs],
      },
      { organisationId: request.organisationId, createWorkflow: true },
    );
  }

  /** Where a job registered without sources keeps its assets: its own prefixes in S3_ASSETS_BUCKET. */
  defaultSources(workflowId: string, jobId: string): { inputs: string; outputs: string } {
    const base = `s3://${this.config.assetsBucket}/workflows/${workflowId}/jobs/${jobId}`;
    return { inputs: `${base}/inputs/`, outputs: `${base}/outputs/` };
  }

  async listOperations(filter: { status?: string; limit?: number }) {
    if (filter.status !== undefined && !Object.hasOwn(OperationStatus, filter.status)) {
      throw new AppError('INVALID_ARGUMENT', `--status must be one of ${Object.keys(OperationStatus).join(', ')}`);
    }
    const limit = filter.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new AppError('INVALID_ARGUMENT', '--limit must be an integer from 1 to 1000');
    }
    const operations = await this.operations.list({ status: filter.status as OperationStatus | undefined, limit });
    return operations.map(toOperationRecord);
  }
}
