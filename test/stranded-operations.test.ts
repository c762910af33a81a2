import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { OperationRepository } from '../src/downloads/operation.repository.js';
import { PackageObjects } from '../src/downloads/package-objects.js';
import { WebhookDispatcher } from '../src/notifications/webhook-dispatcher.js';
import { PackagingWorker } from '../src/packaging/packaging.worker.js';
import { Reconciler } from '../src/operations/maintenance/reconciler.service.js';
import { FairShare } from '../src/platform/queues/fair-share.js';
import { clearStalls, PackageQueue } from '../src/platform/queues/package-queue.js';
import { FAST_REDIS } from '../src/platform/redis/redis.connections.js';
import { PACKAGE_JOB, PACKAGING_QUEUE } from '../src/platform/queues/queue-names.js';
import { download, downloadPath, Fixtures, inspectQueue, onDatabaseOfItsOwn, sha256, startTestApp, uniqueQueuePrefix, type SeededJob, type TestApp } from './support/harness.js';
import { freePort, startPrivateRedis, startRelay, startS3Proxy, waitFor } from './support/processes.js';

const MiB = 1024 * 1024;
const raster = (bytes: number) => Buffer.concat([Buffer.from('II*\0'), randomBytes(bytes - 4)]);
const bands = (count: number, bytes: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`b${i}.tif`, raster(bytes)]));

/**
 * Faults that used to leave an operation pending for ever or a package written by two workers: Postgres cut
 * off from the workers, a job that ended in Redis without its outcome on record, a worker cut off from Redis
 * past its lock. What is checked is what an operator would: the rows, the queue and the bucket.
 */
describe('no operation stranded, one writer per package', () => {
  let fixtures: Fixtures;

  beforeAll(async () => {
    fixtures = await Fixtures.create();
  });

  afterAll(async () => {
    await fixtures.close();
  });

  const operationOf = (id: string) => fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id } });
  const readyOperation = (id: string, timeoutMs = 60_000) =>
    waitFor(async () => {
      const operation = await operationOf(id);
      return operation.status === 'ready' ? operation : undefined;
    }, timeoutMs, `operation ${id} to be ready`);
  const put = (app: TestApp, job: SeededJob) => app.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(200);

  /**
   * Admits the operation's build, as a worker with a free slot would, then fails its job in Redis without a
   * word to Postgres, as a worker cut off from Postgres would.
   */
  async function failInRedisOnly(api: TestApp, queuePrefix: string, operationId: string, { stalledBefore = 0 } = {}): Promise<void> {
    expect(await api.app.get(PackageQueue).admitNext(1)).toEqual([operationId]);
    const connection = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
    // BullMQ's count of the workers that died under the job (it fails the job past WorkerOptions.maxStalledCount).
    if (stalledBefore) await connection.hset(`${queuePrefix}:${PACKAGING_QUEUE}:${operationId}`, 'stc', String(stalledBefore));
    // No stalled-jobs check: its interval (BullMQ's default, 30 s) would hold off every other worker's as long.
    const worker = new Worker(PACKAGING_QUEUE, async () => {
      throw new UnrecoverableError('the outcome could not be recorded');
    }, { connection, prefix: queuePrefix, skipStalledCheck: true });
    try {
      await waitFor(() => inspectQueue(queuePrefix, async (queue) => (await queue.getJobState(operationId)) === 'failed'), 15_000, 'the job to fail in Redis');
    } finally {
      await worker.close();
      connection.disconnect();
    }
  }

  it('a Postgres outage seen by the workers leaves no operation pending: the build runs once Postgres is back, no attempt spent', async () => {
    const relay = await startRelay(5432);
    const viaRelay = new URL(process.env.DATABASE_URL!);
    viaRelay.port = String(relay.port);
    const queuePrefix = uniqueQueuePrefix();
    const api = await startTestApp('api', { QUEUE_PREFIX: queuePrefix });
    const worker = await startTestApp('worker', { QUEUE_PREFIX: queuePrefix, DATABASE_URL: viaRelay.toString(), PACKAGE_ATTEMPTS: '2', RETRY_BASE_DELAY_MS: '300' });
    try {
      const job = await fixtures.job({ inputs: { 'a.tif': raster(64 * 1024) } });
      await relay.cut();

      const { body } = await put(api, job);
      // Long enough for both attempts and their backoff to be spent many times over, had they been counted.
      await new Promise((resolve) => setTimeout(resolve, 6_000));
      expect((await operationOf(body.id)).status).toBe('pending');

      await relay.restore();

      const ready = await readyOperation(body.id);
      expect(ready.attempts).toBe(1);
      const { body: again } = await put(api, job);
      expect(again).toMatchObject({ id: body.id, status: 'ready' });
      expect(await fixtures.prisma.downloadOperation.count({ where: { jobId: job.jobId } })).toBe(1);
    } finally {
      await relay.restore().catch(() => undefined);
      await worker.close();
      await api.close();
      await relay.cut().catch(() => undefined);
    }
  }, 90_000);

  it('the next PUT revives a job that ended in Redis while its operation stayed pending', async () => {
    const queuePrefix = uniqueQueuePrefix();
    const api = await startTestApp('api', { QUEUE_PREFIX: queuePrefix });
    let worker: TestApp | undefined;
    try {
      const job = await fixtures.job({ inputs: { 'a.tif': raster(64 * 1024) } });
      const { body } = await put(api, job);
      await failInRedisOnly(api, queuePrefix, body.id);
      expect((await operationOf(body.id)).status).toBe('pending');

      const { body: again } = await put(api, job);

      expect(again).toMatchObject({ id: body.id, status: 'pending' });
      expect(await inspectQueue(queuePrefix, (queue) => queue.getJobState(body.id))).toBe('waiting');
      worker = await startTestApp('worker', { QUEUE_PREFIX: queuePrefix });
      await readyOperation(body.id);
    } finally {
      await worker?.close();
      await api.close();
    }
  }, 60_000);

  interface StrandedBuild {
    api: TestApp;
    queuePrefix: string;
    fair: FairShare;
    queue: PackageQueue;
    /** The stranded operation and the job it packages. */
    operationId: string;
    stranded: SeededJob;
    /** More jobs of the same organisation. */
    others: SeededJob[];
    /** The admission token the ended attempt's job carried: what its worker releases the slot with. */
    endedAttempt: string;
    startWorker(): Promise<TestApp>;
  }

  /**
   * An API under ORG_MAX_ACTIVE_BUILDS 1 and an organisation's build stranded in it: admitted, its job failed
   * in Redis only, its slot not released yet; `others` more jobs of that organisation. A worker starts when
   * asked; everything is closed afterwards.
   */
  async function withStrandedBuild(others: number, use: (build: StrandedBuild) => Promise<void>): Promise<void> {
    const queuePrefix = uniqueQueuePrefix();
    const settings = { QUEUE_PREFIX: queuePrefix, ORG_MAX_ACTIVE_BUILDS: '1' };
    const api = await startTestApp('api', settings);
    let worker: TestApp | undefined;
    try {
      const owner = await fixtures.organisationWithKey();
      const stranded = await fixtures.job({ owner, inputs: { 'a.tif': raster(64 * 1024) } });
      const otherJobs: SeededJob[] = [];
      for (let i = 0; i < others; i++) otherJobs.push(await fixtures.job({ owner, inputs: { [`other-${i}.tif`]: raster(64 * 1024) } }));
      const { body } = await put(api, stranded);
      await failInRedisOnly(api, queuePrefix, body.id);
      const endedAttempt = await inspectQueue(queuePrefix, async (queue) => (await queue.getJob(body.id))!.data.admission as string);
      expect(endedAttempt).toMatch(/^\d+$/);
      await use({
        api,
        queuePrefix,
        fair: api.app.get(FairShare),
        queue: api.app.get(PackageQueue),
        operationId: body.id,
        stranded,
        others: otherJobs,
        endedAttempt,
        startWorker: async () => (worker = await startTestApp('worker', settings)),
      });
    } finally {
      await worker?.close();
      await api.close();
    }
  }

  it("a revived job whose slot was released waits under ORG_MAX_ACTIVE_BUILDS, first in its organisation's line, then is retried and built", async () => {
    await withStrandedBuild(2, async ({ api, queuePrefix, fair, queue, operationId, stranded, others: [other, later], startWorker }) => {
      // As a worker does once a job has failed for good: the organisation's slot is free again.
      await queue.release(operationId);
      // And the organisation's one slot goes to its other build; a third joins the line behind it.
      const { body: second } = await put(api, other);
      expect(await queue.admitNext(1)).toEqual([second.id]);
      const { body: third } = await put(api, later);

      await put(api, stranded);

      // Revived without a second slot: in line, its job still failed, one build admitted.
      expect(await fair.stateOf(operationId)).toBe('queued');
      expect(await inspectQueue(queuePrefix, (bull) => bull.getJobState(operationId))).toBe('failed');
      expect(await fair.admitted()).toEqual([second.id]);
      // Once the other build has ended, the revived one is admitted before the build that joined the line
      // after it was first queued, its job retried, and the package built.
      await startWorker();
      await readyOperation(second.id);
      const ready = await readyOperation(operationId);
      expect(ready.errorCode).toBeNull();
      const thirdReady = await readyOperation(third.id);
      expect(ready.startedAt!.getTime()).toBeLessThan(thirdReady.startedAt!.getTime());
      expect(ready.readyAt!.getTime()).toBeLessThanOrEqual(thirdReady.startedAt!.getTime());
    });
  }, 60_000);

  it("a revive that comes before the ended attempt's release keeps the organisation's slot: the late release leaves the revived build counted", async () => {
    await withStrandedBuild(1, async ({ api, queuePrefix, fair, queue, operationId, stranded, others: [other], endedAttempt, startWorker }) => {
      await put(api, stranded);
      expect(await inspectQueue(queuePrefix, (bull) => bull.getJobState(operationId))).toBe('waiting');

      // The ended attempt's worker releases, as workers do, with the admission token its job carried.
      await queue.release(operationId, endedAttempt);

      // The revived build still holds the organisation's one slot: its other build is not admitted beside it.
      expect(await fair.admitted()).toEqual([operationId]);
      const { body: second } = await put(api, other);
      expect(await queue.admitNext(2)).toEqual([]);
      expect(await fair.stateOf(second.id)).toBe('queued');
      await startWorker();
      await readyOperation(operationId);
      await readyOperation(second.id);
    });
  }, 60_000);

  it("a release that comes after a revive renewed the admission, before its retry, frees nothing: the retried build keeps the slot", async () => {
    await withStrandedBuild(1, async ({ api, queuePrefix, fair, queue, operationId, stranded, others: [other], endedAttempt, startWorker }) => {
      // The ended attempt's worker releases, with its job's token, just after the revive renewed the admission
      // and before it retries the job (which is still failed then: a release without a token would free it).
      const renew = fair.renew.bind(fair);
      let stillAdmitted: string | undefined;
      fair.renew = async (id) => {
        fair.renew = renew;
        const token = await renew(id);
        expect(await inspectQueue(queuePrefix, (bull) => bull.getJobState(id))).toBe('failed');
        await queue.release(id, endedAttempt);
        stillAdmitted = await fair.stateOf(id);
        return token;
      };

      await put(api, stranded);
      expect(fair.renew).toBe(renew);

      expect(stillAdmitted).toBe('running');
      expect(await inspectQueue(queuePrefix, (bull) => bull.getJobState(operationId))).toBe('waiting');
      expect(await fair.admitted()).toEqual([operationId]);
      const { body: second } = await put(api, other);
      expect(await queue.admitNext(2)).toEqual([]);
      await startWorker();
      const ready = await readyOperation(operationId);
      const secondReady = await readyOperation(second.id);
      expect(ready.readyAt!.getTime()).toBeLessThanOrEqual(secondReady.startedAt!.getTime());
    });
  }, 60_000);

  it("a release that comes between a revive's look at the slot and its retry sends the revived operation back in line, not past the cap", async () => {
    await withStrandedBuild(0, async ({ api, queuePrefix, fair, queue, operationId, stranded, endedAttempt, startWorker }) => {
      // The ended attempt's worker releases the slot just after the revive has seen it held.
      const stateOf = fair.stateOf.bind(fair);
      fair.stateOf = async (id) => {
        fair.stateOf = stateOf;
        const state = await stateOf(id);
        await queue.release(id, endedAttempt);
        return state;
      };

      await put(api, stranded);
      expect(fair.stateOf).toBe(stateOf);

      // Its job not queued again without a slot: the operation back in its organisation's line, then admitted,
      // its job retried, and built.
      expect(await fair.stateOf(operationId)).toBe('queued');
      expect(await fair.admitted()).toEqual([]);
      expect(await inspectQueue(queuePrefix, (bull) => bull.getJobState(operationId))).toBe('failed');
      await startWorker();
      const ready = await readyOperation(operationId);
      expect(ready.errorCode).toBeNull();
    });
  }, 60_000);

  it('a revived job is a fresh start: after one that had stalled before is revived, a worker dying under it once more gets it rebuilt, not failed', async () => {
    // BullMQ fails a job whose workers died under it more than twice. A revived job starts a fresh set of
    // attempts; the stalls of the set that ended must not count against it.
    const queuePrefix = uniqueQueuePrefix();
    const api = await startTestApp('api', { QUEUE_PREFIX: queuePrefix });
    let worker: TestApp | undefined;
    const connection = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
    // Takes the job and dies with it: no lock renewal, and it never answers.
    const dying = new Worker(PACKAGING_QUEUE, () => new Promise(() => undefined), {
      connection,
      prefix: queuePrefix,
      autorun: false,
      lockDuration: 500,
      skipLockRenewal: true,
      skipStalledCheck: true,
    });
    try {
      const job = await fixtures.job({ inputs: { 'a.tif': raster(64 * 1024) } });
      const { body } = await put(api, job);
      await failInRedisOnly(api, queuePrefix, body.id, { stalledBefore: 3 });
      expect((await operationOf(body.id)).status).toBe('pending');

      await put(api, job);
      void dying.run();
      await waitFor(() => inspectQueue(queuePrefix, async (queue) => (await queue.getJobState(body.id)) === 'active'), 10_000, 'the dying worker to take the job');
      await dying.close(true);
      worker = await startTestApp('worker', { QUEUE_PREFIX: queuePrefix, WORKER_LOCK_SECONDS: '2' });

      const settled = await waitFor(async () => {
        const operation = await operationOf(body.id);
        return operation.status === 'pending' ? undefined : operation;
      }, 30_000, `operation ${body.id} to settle`);
      expect(settled).toMatchObject({ status: 'ready', errorCode: null });
    } finally {
      await dying.close(true).catch(() => undefined);
      connection.disconnect();
      await worker?.close();
      await api.close();
    }
  }, 60_000);

  it('a job that stalled more often than BullMQ allows ends failed (INTERRUPTED) and frees its organisation\'s slot', async () => {
    // BullMQ marks such a job in Redis (its deferred failure) and fails it when a worker next takes it.
    const queuePrefix = uniqueQueuePrefix();
    const api = await startTestApp('api', { QUEUE_PREFIX: queuePrefix });
    let worker: TestApp | undefined;
    const connection = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
    try {
      const job = await fixtures.job({ inputs: { 'a.tif': raster(64 * 1024) } });
      const { body } = await put(api, job);
      expect(await api.app.get(PackageQueue).admitNext(1)).toEqual([body.id]);
      await connection.hset(`${queuePrefix}:${PACKAGING_QUEUE}:${body.id}`, 'defa', 'job stalled more than allowable limit');

      worker = await startTestApp('worker', { QUEUE_PREFIX: queuePrefix });

      const settled = await waitFor(async () => {
        const operation = await operationOf(body.id);
        return operation.status === 'pending' ? undefined : operation;
      }, 30_000, `operation ${body.id} to settle`);
      expect(settled).toMatchObject({ status: 'failed', errorCode: 'INTERRUPTED', readyAt: null });
      await waitFor(async () => (await api.app.get(FairShare).admitted()).length === 0, 10_000, 'its slot to be freed');
    } finally {
      connection.disconnect();
      await worker?.close();
      await api.close();
    }
  }, 60_000);

  it('a revive clears the stall count, and gives its token, to a job still finished only: a job another process revived a moment ago keeps its count and its token', async () => {
    // Two revives of one job can interleave: both read it failed, the first re-queues it, a worker takes it and
    // dies under it once. The second must not wipe that stall, which BullMQ counts towards failing the job.
    const queuePrefix = uniqueQueuePrefix();
    const connection = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
    const queue = new Queue(PACKAGING_QUEUE, { connection, prefix: queuePrefix });
    const worker = new Worker(PACKAGING_QUEUE, async () => {
      throw new UnrecoverableError('the outcome could not be recorded');
    }, { connection, prefix: queuePrefix, skipStalledCheck: true, autorun: false });
    try {
      await queue.add(PACKAGE_JOB, { operationId: 'requeued', admission: '7' }, { jobId: 'requeued' });
      await connection.hset(queue.toKey('requeued'), 'stc', '1');
      expect(await clearStalls(connection, queue, 'requeued', 'failed', { operationId: 'requeued', admission: '8' })).toBe(false);
      expect(await connection.hget(queue.toKey('requeued'), 'stc')).toBe('1');
      expect((await queue.getJob('requeued'))!.data.admission).toBe('7');

      void worker.run();
      await waitFor(async () => (await queue.getJobState('requeued')) === 'failed', 15_000, 'the job to fail');
      await connection.hset(queue.toKey('requeued'), 'stc', '3');
      expect(await clearStalls(connection, queue, 'requeued', 'failed', { operationId: 'requeued', admission: '9' })).toBe(true);
      expect(await connection.hget(queue.toKey('requeued'), 'stc')).toBeNull();
      expect((await queue.getJob('requeued'))!.data).toEqual({ operationId: 'requeued', admission: '9' });
    } finally {
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
      connection.disconnect();
    }
  });

  it('the reconciler re-drives stranded operations on its own: one ended in Redis, one never queued', async () => {
    await onDatabaseOfItsOwn(async (own) => {
      const queuePrefix = uniqueQueuePrefix();
      const api = await startTestApp('api', { DATABASE_URL: own.url, QUEUE_PREFIX: queuePrefix });
      let worker: TestApp | undefined;
      const readyOnOwn = (id: string) =>
        waitFor(async () => (await own.fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id } })).status === 'ready', 60_000, `operation ${id} to be ready`);
      try {
        const endedInRedis = await own.fixtures.job({ inputs: { 'a.tif': raster(64 * 1024) } });
        const { body } = await put(api, endedInRedis);
        await failInRedisOnly(api, queuePrefix, body.id);
        const neverQueued = await own.fixtures.job({ inputs: { 'b.tif': raster(64 * 1024) } });
        const recordedOnly = await own.fixtures.prisma.downloadOperation.create({ data: { workflowId: neverQueued.workflowId, jobId: neverQueued.jobId } });

        worker = await startTestApp('worker', { DATABASE_URL: own.url, QUEUE_PREFIX: queuePrefix, RECONCILE_SECONDS: '1', RECONCILE_AFTER_SECONDS: '1' });

        await readyOnOwn(body.id);
        await readyOnOwn(recordedOnly.id);
      } finally {
        await worker?.close();
        await api.close();
      }
    });
  }, 60_000);

  it('the reconciler queues an admitted operation whose job is missing (its worker died between the claim and the add) on its next run, however recently it changed', async () => {
    await onDatabaseOfItsOwn(async (own) => {
      const queuePrefix = uniqueQueuePrefix();
      const api = await startTestApp('api', { DATABASE_URL: own.url, QUEUE_PREFIX: queuePrefix });
      let worker: TestApp | undefined;
      try {
        const job = await own.fixtures.job({ inputs: { 'a.tif': raster(64 * 1024) } });
        const { body } = await put(api, job);
        // Claimed, as a worker with a free slot does, and never added: that worker died.
        const [claimed] = await api.app.get(FairShare).claim(1, 0);
        expect(claimed.operationId).toBe(body.id);
        worker = await startTestApp('worker', { DATABASE_URL: own.url, QUEUE_PREFIX: queuePrefix, RECONCILE_SECONDS: '86400' });

        // Just now: RECONCILE_AFTER_SECONDS has not passed. The worker's own scheduled run (a job scheduler
        // fires once as it is created) may get there first; either way the job must be queued exactly once.
        const outcome = await worker.app.get(Reconciler).reconcile();

        expect(outcome.added).toBeLessThanOrEqual(1);
        const queued = await inspectQueue(queuePrefix, async (queue) => (await queue.getJob(body.id))?.data);
        expect(queued).toEqual({ operationId: body.id, admission: claimed.token });
        await waitFor(async () => (await own.fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: body.id } })).status === 'ready', 30_000, 'the build');
      } finally {
        await worker?.close();
        await api.close();
      }
    });
  }, 60_000);

  it('the reconciler gets past a backlog waiting in line: an operation stranded behind 200 waiting ones is queued again', async () => {
    await onDatabaseOfItsOwn(async ({ url, fixtures: own }) => {
      const api = await startTestApp('api', { DATABASE_URL: url, QUEUE_PREFIX: uniqueQueuePrefix() });
      try {
        const seed = await own.job({ inputs: { 'a.tif': 'x' } });
        const backlog = Array.from({ length: 200 }, (_, i) => `backlog-${i}`);
        await own.prisma.job.createMany({ data: backlog.map((id) => ({ workflowId: seed.workflowId, id, status: 'completed' as const, inputs: [], outputs: [] })) });
        await own.prisma.downloadOperation.createMany({ data: backlog.map((jobId) => ({ workflowId: seed.workflowId, jobId })) });
        const waiting = await own.prisma.downloadOperation.findMany({ where: { workflowId: seed.workflowId } });
        const fair = api.app.get(FairShare);
        for (const operation of waiting) await fair.submit(operation.id, seed.organisationId);
        // Never queued (its PUT met a Redis outage), and newer than the backlog.
        const stranded = await own.prisma.downloadOperation.create({ data: { workflowId: seed.workflowId, jobId: seed.jobId } });
        await own.prisma.$executeRaw`UPDATE download_operations SET updated_at = now() - interval '2 days' WHERE workflow_id = ${seed.workflowId} AND id <> ${stranded.id}::uuid`;
        await own.prisma.$executeRaw`UPDATE download_operations SET updated_at = now() - interval '1 day' WHERE id = ${stranded.id}::uuid`;
        const reconciler = new Reconciler(api.app.get(OperationRepository), api.app.get(PackageQueue), api.app.get(WebhookDispatcher), api.config);

        const runs = [await reconciler.reconcile(), await reconciler.reconcile()];

        expect(runs.map((run) => run.added)).toEqual([0, 1]);
        expect(await fair.stateOf(stranded.id)).toBe('queued');
      } finally {
        await api.close();
      }
    });
  }, 60_000);

  it('a worker shut down while Redis is away stops soon after its grace period instead of waiting for Redis', async () => {
    const relay = await startRelay(Number(new URL(process.env.REDIS_URL!).port || 6379));
    const worker = await startTestApp('worker', { QUEUE_PREFIX: uniqueQueuePrefix(), REDIS_URL: `redis://127.0.0.1:${relay.port}`, SHUTDOWN_GRACE_SECONDS: '0' });
    try {
      await relay.cut();
      const commands = worker.app.get<Redis>(FAST_REDIS);
      await waitFor(async () => commands.status === 'reconnecting', 10_000, 'the worker to notice that Redis is away');
      // BullMQ's close waits for commands that wait for Redis, and ioredis never ends a connection closed
      // between two reconnect attempts (redis/ioredis#1247): without the cut this close would never return.
      await worker.close();
      expect(commands.status).toBe('end');
    } finally {
      await relay.cut().catch(() => undefined);
    }
  }, 30_000);

  it('a lock judged lost while it was still held (a late renewal answer) hands the build back: built on its next run, not failed in Redis with the operation left pending', async () => {
    let release = () => undefined as void;
    const secondBandHeld = new Promise<void>((resolve) => (release = resolve));
    const s3 = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), {
      hold: (method, url) => (method === 'GET' && url.includes('/b1.tif') ? secondBandHeld : undefined),
    });
    // One attempt: a job failed on it would stay failed in Redis, its operation pending until the reconciler.
    const service = await startTestApp('all', { QUEUE_PREFIX: uniqueQueuePrefix(), PACKAGE_ATTEMPTS: '1', S3_ENDPOINT: `http://127.0.0.1:${s3.port}` });
    try {
      const job = await fixtures.job({ inputs: bands(2, 256 * 1024) });
      const { body } = await put(service, job);
      await waitFor(async () => s3.requests.some(({ method, url }) => method === 'GET' && url.includes('/b1.tif')), 30_000, 'the build to be under way');

      // The lock watch's verdict, as when a renewal's answer comes after a whole lock duration.
      const bullWorker = (service.app.get(PackagingWorker) as unknown as { worker: Worker }).worker;
      bullWorker.emit('lockRenewalFailed', [body.id]);
      release();

      const ready = await readyOperation(body.id, 30_000);
      expect(ready.attempts).toBe(2);
      const { body: answer } = await put(service, job);
      expect((await download(answer.signed_url)).status).toBe(200);
    } finally {
      release();
      await service.close();
      await s3.close();
    }
  }, 90_000);

  it('Redis emptied under a running build (FLUSHALL, a restart without persistence): the build is queued again at once and completes, no PUT, no reconciler', async () => {
    const port = await freePort();
    const redis = await startPrivateRedis(port);
    let release = () => undefined as void;
    const secondBandHeld = new Promise<void>((resolve) => (release = resolve));
    const s3 = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), {
      hold: (method, url) => (method === 'GET' && url.includes('/b1.tif') ? secondBandHeld : undefined),
    });
    // The reconciler would only look after five minutes.
    const service = await startTestApp('all', {
      REDIS_URL: `redis://127.0.0.1:${port}`,
      S3_ENDPOINT: `http://127.0.0.1:${s3.port}`,
      WORKER_LOCK_SECONDS: '2',
      RECONCILE_AFTER_SECONDS: '300',
    });
    try {
      const job = await fixtures.job({ inputs: bands(2, 256 * 1024) });
      const { body } = await put(service, job);
      await waitFor(async () => s3.requests.some(({ method, url }) => method === 'GET' && url.includes('/b1.tif')), 30_000, 'the build to be under way');

      const connection = new Redis(`redis://127.0.0.1:${port}`);
      await connection.flushall();
      connection.disconnect();
      // Its lock gone with the rest, the build stops.
      await waitFor(async () => /packaging_builds_total\{outcome="abandoned"\} 1/.test((await service.http.get('/metrics')).text), 15_000, 'the build to stop');
      release();

      const ready = await readyOperation(body.id, 30_000);
      expect(ready.attempts).toBe(2);
    } finally {
      release();
      await service.close();
      await s3.close();
      await redis.kill('SIGKILL');
    }
  }, 90_000);

  it('a build cancelled while it lists its sources, whose worker missed the announcement, writes nothing', async () => {
    let release = () => undefined as void;
    const listingHeld = new Promise<void>((resolve) => (release = resolve));
    const s3 = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), {
      hold: (method, url) => (method === 'GET' && url.includes('list-type=2') ? listingHeld : undefined),
    });
    const queuePrefix = uniqueQueuePrefix();
    const service = await startTestApp('all', { QUEUE_PREFIX: queuePrefix, S3_ENDPOINT: `http://127.0.0.1:${s3.port}` });
    try {
      const job = await fixtures.job({ inputs: { 'a.tif': raster(64 * 1024) } });
      const { body } = await put(service, job);
      await waitFor(async () => s3.requests.some(({ url }) => url.includes('list-type=2')), 30_000, 'the listing to begin');
      // Cancelled in Postgres alone: no announcement reaches the worker.
      await fixtures.prisma.downloadOperation.update({ where: { id: body.id }, data: { status: 'cancelled', cancelledAt: new Date() } });
      release();

      const state = await waitFor(
        () => inspectQueue(queuePrefix, async (queue) => ((await queue.getJobState(body.id)) === 'completed' ? (await queue.getJob(body.id))!.returnvalue : undefined)),
        30_000,
        'the job to end',
      );
      expect(state).toBe('skipped');
      // Nothing read but the listing, nothing written.
      expect(s3.requests.filter(({ url }) => !url.includes('list-type=2')).map(({ method, url }) => `${method} ${url}`)).toEqual([]);
      expect(await fixtures.prisma.packageObject.count({ where: { operationId: body.id } })).toBe(0);
    } finally {
      release();
      await service.close();
      await s3.close();
    }
  }, 60_000);

  it('a worker cut off from Redis past its lock stops its build; the one that takes over alone owns the package', async () => {
    const queuePrefix = uniqueQueuePrefix();
    const relay = await startRelay(Number(new URL(process.env.REDIS_URL!).port || 6379));
    // The cut-off worker's reads of the last band wait until the end of the test: its build cannot finish
    // before it notices its lost lock, however fast the rest of it runs.
    let release = () => undefined as void;
    const lastBandHeld = new Promise<void>((resolve) => (release = resolve));
    const s3 = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), {
      hold: (method, url) => (method === 'GET' && url.includes('/b5.tif') ? lastBandHeld : undefined),
    });
    const settings = { QUEUE_PREFIX: queuePrefix, WORKER_LOCK_SECONDS: '2', SHUTDOWN_GRACE_SECONDS: '1', PACKAGE_DELETE_GRACE_SECONDS: '0' };
    const api = await startTestApp('api', { QUEUE_PREFIX: queuePrefix });
    const cutOff = await startTestApp('worker', { ...settings, REDIS_URL: `redis://127.0.0.1:${relay.port}`, S3_ENDPOINT: `http://127.0.0.1:${s3.port}` });
    let rescuer: TestApp | undefined;
    try {
      const inputs = bands(6, 48 * MiB);
      const job = await fixtures.job({ inputs });
      const { body } = await put(api, job);
      await waitFor(async () => (await operationOf(body.id)).bytesDone > 0n, 30_000, 'the first worker to be streaming');
      // Only the cut-off worker needs the short lock: the rescuer's own build must not lapse while this Jest
      // process, which also carries the proxy and the relay, is busy.
      rescuer = await startTestApp('worker', { ...settings, WORKER_LOCK_SECONDS: '10' });

      await relay.cut();

      const ready = await readyOperation(body.id, 90_000);
      const abandoned = await waitFor(async () => {
        const metrics = (await cutOff.http.get('/metrics')).text;
        return /packaging_builds_total\{outcome="abandoned"\} 1/.test(metrics);
      }, 15_000, 'the cut-off worker to give its build up');
      expect(abandoned).toBe(true);
      expect(ready.attempts).toBe(2);

      // What the bucket holds for this operation, once the objects nobody owns are swept: the ready one alone.
      await rescuer.app.get(PackageObjects).sweep();
      const listed = await fixtures.storage.client.send(new ListObjectsV2Command({ Bucket: 'test-packages', Prefix: `packages/${job.workflowId}/` }));
      expect((listed.Contents ?? []).map((object) => object.Key)).toEqual([ready.archiveKey]);
      const { body: answer } = await put(api, job);
      const zip = await download(answer.signed_url);
      expect(zip.body.length).toBe(Number(ready.sizeBytes));
      expect(sha256(zip.body)).toBe(ready.sha256);
    } finally {
      release();
      await relay.restore().catch(() => undefined);
      await rescuer?.close();
      await cutOff.close();
      await api.close();
      await s3.close();
      await relay.cut().catch(() => undefined);
    }
  }, 150_000);
});
