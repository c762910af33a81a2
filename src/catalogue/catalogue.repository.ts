import { Injectable } from '@nestjs/common';
import { AppError } from '../platform/errors.js';
import type { Job, JobStatus, Organisation, Workflow } from '../generated/prisma/client.js';
import { PrismaService } from '../platform/prisma/prisma.service.js';

export interface RegisterJobInput {
  organisationId: string;
  workflowId: string;
  jobId: string;
  status: JobStatus;
  inputsUri: string;
  outputsUri: string;
}

const FINISHED: ReadonlySet<JobStatus> = new Set<JobStatus>(['completed', 'failed', 'cancelled']);

export function isFinished(status: JobStatus): boolean {
  return FINISHED.has(status);
}

/** Organisations, their workflows and the job runs in them: what the service is asked to package. */
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

  findJob(workflowId: string, jobId: string): Promise<Job | null> {
    return this.prisma.job.findUnique({ where: { workflowId_id: { workflowId, id: jobId } } });
  }

  /** Creates the workflow for the organisation when new (refused when another owns it), then creates or updates the job. */
  async registerJob(input: RegisterJobInput): Promise<Job> {
    await this.prisma.workflow.upsert({
      where: { id: input.workflowId },
      create: { id: input.workflowId, organisationId: input.organisationId },
      update: {},
    });
    const workflow = await this.findWorkflow(input.workflowId);
    if (workflow?.organisationId !== input.organisationId) {
      throw new AppError('FORBIDDEN', `workflow ${input.workflowId} belongs to another organisation`);
    }
    const where = { workflowId_id: { workflowId: input.workflowId, id: input.jobId } };
    const existing = await this.prisma.job.findUnique({ where });
    const changed = !existing || existing.status !== input.status || existing.inputsUri !== input.inputsUri || existing.outputsUri !== input.outputsUri;
    if (existing && !changed) return existing;
    // A job that stays finished keeps when it finished; updated_at says the registration changed.
    const finishedAt = isFinished(input.status) ? (existing?.finishedAt ?? new Date()) : null;
    const fields = { status: input.status, inputsUri: input.inputsUri, outputsUri: input.outputsUri, finishedAt, updatedAt: new Date() };
    return this.prisma.job.upsert({ where, create: { workflowId: input.workflowId, id: input.jobId, ...fields }, update: fields });
  }
}
