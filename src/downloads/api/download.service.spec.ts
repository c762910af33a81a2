import { Test } from '@nestjs/testing';
import type { DownloadOperation } from '../../generated/prisma/client.js';
import { AppConfig, loadConfig } from '../../platform/config/app-config.js';
import { AppError } from '../../platform/errors.js';
import { MetricsService } from '../../platform/metrics/metrics.service.js';
import { Announcer } from '../../platform/redis/announcer.js';
import { WebhookDispatcher } from '../../notifications/webhook-dispatcher.js';
import { PackageQueue } from '../../platform/queues/package-queue.js';
import { DownloadUrlSigner } from '../../storage/url-signer.js';
import { OperationEvents } from '../operation-events.js';
import { OperationRepository, type DownloadTarget, type PackageLocation } from '../operation.repository.js';
import { PackageObjects } from '../package-objects.js';
import { DownloadService } from './download.service.js';

const JOB = { workflowId: 'wf', jobId: 'job', taskId: null };
const caller = { keyId: '00000000-0000-4000-8000-00000000000a', organisationId: 'org-1' };
const HOUR = 3_600_000;

function operation(fields: Partial<DownloadOperation>): DownloadOperation {
  return {
    id: 'op-1',
    workflowId: 'wf',
    jobId: 'job',
    taskId: null,
    status: 'pending',
    attempts: 0,
    bytesDone: 0n,
    bytesTotal: null,
    entryCount: null,
    archiveKey: null,
    sizeBytes: null,
    sha256: null,
    errorCode: null,
    errorMessage: null,
    requestedBy: null,
    createdAt: new Date('2026-12-01T10:00:00Z'),
    updatedAt: new Date('2026-12-01T10:00:00Z'),
    startedAt: null,
    readyAt: null,
    failedAt: null,
    cancelledAt: null,
    expiresAt: null,
    ...fields,
  };
}

/** Download operations in memory, with the partial unique index's rule: one live (pending or ready) per job. */
class FakeOperations {
  rows: DownloadOperation[] = [];
  target: Omit<DownloadTarget, 'current'> = { organisationId: 'org-1', jobStatus: 'completed', changedAt: new Date('2026-12-01T09:00:00Z') };
  /** Another request wins the race for the next insert: its operation appears instead of ours. */
  racingWinner: DownloadOperation | undefined;
  private next = 1;

  live(): DownloadOperation | null {
    return this.rows.find((row) => row.status === 'pending' || row.status === 'ready') ?? null;
  }

  async findDownloadTarget(): Promise<DownloadTarget | null> {
    return { ...this.target, current: this.live() ?? this.rows.at(-1) ?? null };
  }

  async findCurrent(): Promise<DownloadOperation | null> {
    return this.live() ?? this.rows.at(-1) ?? null;
  }

  async findById(id: string): Promise<DownloadOperation | null> {
    return this.rows.find((row) => row.id === id) ?? null;
  }

  async createPending(): Promise<DownloadOperation | null> {
    if (this.racingWinner) {
      this.rows.push(this.racingWinner);
      this.racingWinner = undefined;
      return null;
    }
    if (this.live()) return null;
    const created = operation({ id: `op-new-${this.next++}` });
    this.rows.push(created);
    return created;
  }

  async expire(id: string, bucket: string): Promise<PackageLocation | null> {
    const row = this.rows.find((candidate) => candidate.id === id && candidate.status === 'ready');
    if (!row) return null;
    row.status = 'expired';
    return { bucket, key: row.archiveKey! };
  }
}

describe('DownloadService: which operation a PUT answers with', () => {
  let sut: DownloadService;
  let operations: FakeOperations;
  let queued: string[];
  let deleted: string[];

  /** The handler of READY_LOOKUPS_STALE announcements (a cancel or a registration anywhere). */
  let onLookupsStale: () => void;

  async function createService(settings: Record<string, string> = {}): Promise<DownloadService> {
    const module = await Test.createTestingModule({
      providers: [
        DownloadService,
        { provide: OperationRepository, useValue: operations },
        {
          provide: PackageQueue,
          useValue: { enqueue: async (id: string) => void queued.push(id), ensureQueued: async (id: string) => void queued.push(id) },
        },
        { provide: PackageObjects, useValue: { deleteListed: async ({ key }: PackageLocation) => void deleted.push(key) } },
        { provide: OperationEvents, useValue: {} },
        { provide: MetricsService, useValue: { waitingRequests: { set: () => undefined } } },
        { provide: Announcer, useValue: { listen: async (_name: string, handler: () => void) => void (onLookupsStale = handler) } },
        { provide: WebhookDispatcher, useValue: { dispatchFor: async () => undefined } },
        {
          provide: DownloadUrlSigner,
          useValue: {
            // Long-term keys: a URL may live as long as asked.
            lifetimeFor: async (seconds: number) => seconds,
            sign: async (_bucket: string, key: string, name: string, seconds: number) => `https://s3/${key}?name=${name}&expires=${seconds}`,
          },
        },
        {
          provide: AppConfig,
          useValue: loadConfig({ READY_CACHE_SECONDS: '0', SIGNED_URL_TTL_SECONDS: '3600', PERMANENT_FAILURE_COOLDOWN_SECONDS: '300', ...settings }),
        },
      ],
    }).compile();
    return module.get(DownloadService);
  }

  beforeEach(async () => {
    operations = new FakeOperations();
    queued = [];
    deleted = [];
    sut = await createService();
  });

  it('answers the pending operation and queues it again (a no-op for a queued one, a rescue for a stranded one)', async () => {
    operations.rows.push(operation({ id: 'op-pending' }));

    const { body, retryAfterSeconds } = await sut.request(caller, JOB, 0);

    expect(body).toMatchObject({ id: 'op-pending', status: 'pending', signed_url: '', workflowId: 'wf' });
    expect(retryAfterSeconds).toBeGreaterThan(0);
    expect(queued).toEqual(['op-pending']);
    expect(operations.rows).toHaveLength(1);
  });

  it('answers a live ready package with a fresh URL and builds nothing', async () => {
    operations.rows.push(operation({ id: 'op-ready', status: 'ready', archiveKey: 'packages/a.zip', expiresAt: new Date(Date.now() + 48 * HOUR) }));

    const { body } = await sut.request(caller, JOB, 0);

    expect(body).toMatchObject({ id: 'op-ready', status: 'ready', progress: 100 });
    expect(body.signed_url).toBe('https://s3/packages/a.zip?name=wf_job.zip&expires=3600');
    expect(queued).toEqual([]);
  });

  it('never signs a URL that outlives its package', async () => {
    operations.rows.push(operation({ id: 'op-ready', status: 'ready', archiveKey: 'packages/a.zip', expiresAt: new Date(Date.now() + 600_000) }));

    const { body } = await sut.request(caller, JOB, 0);

    const expires = Number(new URL(body.signed_url).searchParams.get('expires'));
    expect(expires).toBeLessThanOrEqual(600);
    expect(new Date(body.expires_at!).getTime()).toBeLessThanOrEqual(Date.now() + 600_000);
  });

  it('replaces a ready package past its expiry with a new pending operation, deleting its object', async () => {
    operations.rows.push(operation({ id: 'op-old', status: 'ready', archiveKey: 'packages/old.zip', expiresAt: new Date(Date.now() - 1_000) }));

    const { body } = await sut.request(caller, JOB, 0);

    expect(body).toMatchObject({ id: 'op-new-1', status: 'pending' });
    expect(operations.rows.find((row) => row.id === 'op-old')?.status).toBe('expired');
    expect(deleted).toEqual(['packages/old.zip']);
    expect(queued).toEqual(['op-new-1']);
  });

  it('answers GET on a ready package past its expiry with expired and no URL, changing nothing', async () => {
    operations.rows.push(operation({ id: 'op-old', status: 'ready', archiveKey: 'packages/old.zip', expiresAt: new Date(Date.now() - 1) }));

    const { body } = await sut.current(caller, JOB);

    expect(body).toMatchObject({ id: 'op-old', status: 'expired', signed_url: '', expires_at: null });
    expect(operations.rows[0].status).toBe('ready');
    expect(deleted).toEqual([]);
  });

  it('shows a package that was ready at 100 % once cancelled, as while it was ready', async () => {
    operations.rows.push(operation({ id: 'op-cancelled', status: 'cancelled', bytesDone: 90n, bytesTotal: 100n, readyAt: new Date(Date.now() - 60_000), cancelledAt: new Date() }));

    const { body } = await sut.current(caller, JOB);

    expect(body).toMatchObject({ id: 'op-cancelled', status: 'cancelled', progress: 100 });
  });

  it('answers a recent permanent failure of an unchanged job as it is, without a new build', async () => {
    operations.rows.push(operation({ id: 'op-failed', status: 'failed', errorCode: 'NO_ASSETS', createdAt: new Date(Date.now() - 120_000), failedAt: new Date(Date.now() - 60_000) }));
    operations.target.changedAt = new Date(Date.now() - 180_000);

    const { body } = await sut.request(caller, JOB, 0);

    expect(body).toMatchObject({ id: 'op-failed', status: 'failed', error: { code: 'NO_ASSETS' } });
    expect(queued).toEqual([]);
  });

  it.each([
    ['the job changed since', { failedAt: new Date(Date.now() - 60_000), changedAt: new Date() }],
    // A build planned from the old sources failed after the change was recorded: its failure is of the old job.
    ['the job changed after the operation began, before its failure was recorded', { failedAt: new Date(Date.now() - 1_000), changedAt: new Date(Date.now() - 2_000) }],
    ['the cool-down has passed', { failedAt: new Date(Date.now() - 301_000), changedAt: undefined }],
  ])('builds again after a permanent failure when %s', async (_case, { failedAt, changedAt }) => {
    operations.rows.push(operation({ id: 'op-failed', status: 'failed', errorCode: 'SOURCE_MISSING', createdAt: new Date(Date.now() - 120_000), failedAt }));
    if (changedAt) operations.target.changedAt = changedAt;

    const { body } = await sut.request(caller, JOB, 0);

    expect(body).toMatchObject({ id: 'op-new-1', status: 'pending' });
  });

  it('replaces a failed operation with a new one', async () => {
    operations.rows.push(operation({ id: 'op-failed', status: 'failed', errorCode: 'UPLOAD_FAILED' }));

    const { body } = await sut.request(caller, JOB, 0);

    expect(body).toMatchObject({ id: 'op-new-1', status: 'pending' });
    expect(queued).toEqual(['op-new-1']);
  });

  it('does not cache a ready package that a cancel ended while the request was reading it', async () => {
    const cached = await createService({ READY_CACHE_SECONDS: '60' });
    const ready = operation({ id: 'op-ready', status: 'ready', archiveKey: 'packages/a.zip', expiresAt: new Date(Date.now() + 48 * HOUR) });
    operations.rows.push(ready);
    // The request reads the ready operation; before it answers, the operation is cancelled and every cache cleared.
    const read = operations.findDownloadTarget.bind(operations);
    operations.findDownloadTarget = async () => {
      const target = (await read())!;
      const asRead = { ...target, current: { ...target.current! } };
      ready.status = 'cancelled';
      onLookupsStale();
      return asRead;
    };
    expect((await cached.request(caller, JOB, 0)).body).toMatchObject({ id: 'op-ready', status: 'ready' });
    operations.findDownloadTarget = read;

    // The next PUT is not answered from the cache: it finds the cancel and starts anew.
    const { body } = await cached.request(caller, JOB, 0);
    expect(body).toMatchObject({ id: 'op-new-1', status: 'pending', signed_url: '' });
  });

  it('answers with the operation of a request that won the race to record one', async () => {
    operations.racingWinner = operation({ id: 'op-winner' });

    const { body } = await sut.request(caller, JOB, 0);

    expect(body.id).toBe('op-winner');
    expect(queued).toEqual(['op-winner']);
    expect(operations.rows.map((row) => row.id)).toEqual(['op-winner']);
  });

  it.each([
    ['another organisation owns the workflow', { organisationId: 'org-2', jobStatus: 'completed' as const, changedAt: null }, 'FORBIDDEN'],
    ['the job is still running', { organisationId: 'org-1', jobStatus: 'running' as const, changedAt: null }, 'JOB_NOT_FINISHED'],
    ['there is no such job', { organisationId: 'org-1', jobStatus: null, changedAt: null }, 'NOT_FOUND'],
  ])('refuses when %s, recording nothing', async (_case, target, code) => {
    operations.target = target;

    await expect(sut.request(caller, JOB, 0)).rejects.toMatchObject({ code });
    await expect(sut.request(caller, JOB, 0)).rejects.toBeInstanceOf(AppError);
    expect(operations.rows).toEqual([]);
    expect(queued).toEqual([]);
  });
});
