import { Injectable } from '@nestjs/common';
import { AppConfig } from '../platform/config/app-config.js';
import { EXTERNAL_ID_PATTERN, EXTERNAL_ID_RULE, UUID_PATTERN } from '../catalogue/ids.js';
import { toOperationRecord } from '../downloads/operation-record.js';
import { AppError } from '../platform/errors.js';
import { JobStatus, OperationStatus } from '../generated/prisma/enums.js';
import { CatalogueRepository } from '../catalogue/catalogue.repository.js';
import { OperationRepository } from '../downloads/operation.repository.js';
import { formatS3Uri, parseS3Uri } from '../storage/s3-uri.js';

export interface RegisterJobRequest {
  organisationId: string;
  workflowId: string;
  jobId: string;
  status?: string;
  inputs?: string;
  outputs?: string;
}


/** What operators do from the CLI: organisations, job registration, listing operations. */
@Injectable()
export class OperatorService {
  constructor(
    private readonly catalogue: CatalogueRepository,
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

  async registerJob(request: RegisterJobRequest) {
    for (const [name, value] of [['workflow', request.workflowId], ['job', request.jobId]] as const) {
      if (!EXTERNAL_ID_PATTERN.test(value)) throw new AppError('INVALID_ARGUMENT', `--${name} must be ${EXTERNAL_ID_RULE}`);
    }
    const status = request.status ?? 'completed';
    if (!Object.hasOwn(JobStatus, status)) {
      throw new AppError('INVALID_ARGUMENT', `--status must be one of ${Object.keys(JobStatus).join(', ')}`);
    }
    await this.requireOrganisation(request.organisationId);
    const base = `s3://${this.config.assetsBucket}/workflows/${request.workflowId}/jobs/${request.jobId}`;
    const inputsUri = formatS3Uri(parseS3Uri(request.inputs ?? `${base}/inputs/`));
    const outputsUri = formatS3Uri(parseS3Uri(request.outputs ?? `${base}/outputs/`));
    const job = await this.catalogue.registerJob({
      organisationId: request.organisationId,
      workflowId: request.workflowId,
      jobId: request.jobId,
      status: status as JobStatus,
      inputsUri,
      outputsUri,
    });
    return {
      organisation_id: request.organisationId,
      workflow_id: job.workflowId,
      job_id: job.id,
      status: job.status,
      inputs: job.inputsUri,
      outputs: job.outputsUri,
      created_at: job.createdAt.toISOString(),
      finished_at: job.finishedAt?.toISOString() ?? null,
    };
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
