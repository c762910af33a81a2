import { NestFactory } from '@nestjs/core';
import { randomBytes } from 'node:crypto';
import { CliModule } from '../src/operations/cli/cli.module.js';
import type { AppConfig } from '../src/platform/config/app-config.js';
import { PrismaService } from '../src/platform/prisma/prisma.service.js';
import { ApiKeyService } from '../src/catalogue/api-key.service.js';
import { OperatorService } from '../src/operations/operator.service.js';

export interface ApiSeed {
  apiKey: string;
  /** PUT path of a job whose operation is ready: the API only signs a URL. */
  readyPath: string;
  /** PUT path of a job with no operation yet: the first PUT creates and queues it, later ones re-enqueue. */
  pendingPath: string;
}

const downloadPath = (workflowId: string, jobId: string) => `/v0/workflows/${workflowId}/jobs/${jobId}/download`;

/**
 * An organisation, its key and two finished jobs, through the operator's own services (as the CLI and the
 * tests do). The ready operation is written directly through Prisma: its package need not exist to be signed.
 */
export async function seedApi(config: AppConfig): Promise<ApiSeed> {
  const context = await NestFactory.createApplicationContext(CliModule.forConfig(config), { logger: false });
  try {
    const operator = context.get(OperatorService);
    const organisation = await operator.createOrganisation('bench');
    const key = await context.get(ApiKeyService).create(organisation.id, 'bench');
    const workflowId = `bench-wf-${randomBytes(4).toString('hex')}`;
    await operator.registerJob({ organisationId: organisation.id, workflowId, jobId: 'ready-job' });
    await operator.registerJob({ organisationId: organisation.id, workflowId, jobId: 'pending-job' });
    const now = new Date();
    await context.get(PrismaService).downloadOperation.create({
      data: {
        workflowId,
        jobId: 'ready-job',
        status: 'ready',
        requestedBy: key.id,
        archiveKey: `packages/${workflowId}/ready-job/bench.zip`,
        sizeBytes: 1024n ** 3n,
        sha256: '0'.repeat(64),
        entryCount: 32,
        bytesDone: 1024n ** 3n,
        bytesTotal: 1024n ** 3n,
        startedAt: now,
        readyAt: now,
        expiresAt: new Date(now.getTime() + 7 * 24 * 3600 * 1000),
      },
    });
    return { apiKey: key.key, readyPath: downloadPath(workflowId, 'ready-job'), pendingPath: downloadPath(workflowId, 'pending-job') };
  } finally {
    await context.close();
  }
}
