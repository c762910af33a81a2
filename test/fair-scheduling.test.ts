import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { downloadPath, Fixtures, startTestApp, testConfig, uniqueQueuePrefix, type SeededJob, type TestApp } from './support/harness.js';
import { Reconciler } from '../src/operations/maintenance/reconciler.service.js';
import { FairShare } from '../src/platform/queues/fair-share.js';
import { PackageQueue } from '../src/platform/queues/package-queue.js';
import { PACKAGE_JOB, PACKAGING_QUEUE } from '../src/platform/queues/queue-names.js';
import { freePort, spawnService, startS3Proxy, waitFor } from './support/processes.js';

const MiB = 1024 * 1024;
const raster = (bytes: number) => Buffer.concat([Buffer.from('II*\0'), randomBytes(bytes - 4)]);

/**
 * Builds start round-robin across organisations, and ORG_MAX_ACTIVE_BUILDS caps one organisation's running
 * builds across every worker. Checked on the operations' own timestamps (started_at, ready_at).
 */
describe('fair scheduling across organisations', () => {
  let fixtures: Fixtures;

  beforeAll(async () => {
    fixtures = await Fixtures.create();
  });

  afterAll(async () => {
    await fixtures.close();
  });

  async function jobsOf(count: number, bytes: number) {
    const owner = await fixtures.organisationWithKey();
    const jobs: SeededJob[] = [];
    for (let i = 0; i < count; i++) jobs.push(await fixtures.job({ owner, inputs: { 'scene.tif': raster(bytes) } }));
    return jobs;
  }
  const putAll = async (api: TestApp, jobs: SeededJob[]) => {
    const ids: string[] = [];
    for (const job of jobs) ids.push((await api.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(200)).body.id);
    return ids;
  };
  const allReady = (ids: string[]) =>
    waitFor(async () => {
      const operations = await fixtures.prisma.downloadOperation.findMany({ where: { id: { in: ids } } });
      return operations.length === ids.length && operations.every((operation) => operation.status === 'ready') ? operations : undefined;
    }, 120_000, 'every build');

  it("starts one organisation's build as soon as the build already running ends, though another queued six ahead of it (one worker, one slot)", async () => {
    const queuePrefix = uniqueQueuePrefix();
    const api = await startTestApp('api', { QUEUE_PREFIX: queuePrefix });
    const worker = await startTestApp('worker', { QUEUE_PREFIX: queuePrefix, WORKER_CONCURRENCY: '1' });
    try {
      const a = await jobsOf(6, 24 * MiB);
      const [b] = await jobsOf(1, 24 * MiB);

      const aIds = await putAll(api, a);
      const [bId] = await putAll(api, [b]);
      const bQueuedAt = Date.now();

      const operations = await allReady([...aIds, bId]);
      const started = (id: string) => operations.find((operation) => operation.id === id)!.startedAt!.getTime();
      // B waits only for what was already running when it joined: no A build that started after it did goes first.
      const aStartedLater = aIds.map(started).filter((start) => start > bQueuedAt);
      expect(aStartedLater.length).toBeGreaterThanOrEqual(4);
      expect(started(bId)).toBeLessThan(Math.min(...aStartedLater));
      // One slot: the builds ran one after another.
      const byStart = [...operations].sort((x, y) => x.startedAt!.getTime() - y.startedAt!.getTime());
      for (let i = 1; i < byStart.length; i++) expect(byStart[i].startedAt!.getTime()).toBeGreaterThanOrEqual(byStart[i - 1].readyAt!.getTime());
    } finally {
      await worker.close();
      await api.close();
    }
  }, 180_000);

  it('caps an organisation at ORG_MAX_ACTIVE_BUILDS across two worker processes, while another organisation builds beside it', async () => {
    const queuePrefix = uniqueQueuePrefix();
    const settings = { QUEUE_PREFIX: queuePrefix, WORKER_CONCURRENCY: '2', ORG_MAX_ACTIVE_BUILDS: '1' };
    const api = await startTestApp('api', { QUEUE_PREFIX: queuePrefix });
    // Two worker processes, as production runs them: the cap holds across processes, through Redis.
    const ports = [await freePort(), await freePort()];
    const workers = ports.map((port) => spawnService('worker', { ...settings, WORKER_HEALTH_PORT: String(port) }));
    try {
      for (const port of ports) {
        await waitFor(() => fetch(`http://127.0.0.1:${port}/readyz`).then((response) => response.ok, () => false), 30_000, 'a worker to be ready', 100);
      }
      const a = await jobsOf(4, 24 * MiB);
      const b = await jobsOf(2, 24 * MiB);

      const aIds = await putAll(api, a);
      const bIds = await putAll(api, b);

      const operations = await allReady([...aIds, ...bIds]);
      const intervals = (ids: string[]) =>
        operations
          .filter((operation) => ids.includes(operation.id))
          .map((operation) => [operation.startedAt!.getTime(), operation.readyAt!.getTime()] as const)
          .sort((x, y) => x[0] - y[0]);
      const aRuns = intervals(aIds);
      for (let i = 1; i < aRuns.length; i++) expect(aRuns[i][0]).toBeGreaterThanOrEqual(aRuns[i - 1][1]);
      // B was not held behind A's line: its builds ran while A's were still to come.
      const bRuns = intervals(bIds);
      expect(bRuns.some(([start]) => start < aRuns[aRuns.length - 1][0])).toBe(true);
    } finally {
      // Stopped as production stops them, and killed if one does not stop: a hung worker must not hang the file.
      await Promise.all(workers.map((worker) => worker.stop()));
      await api.close();
    }
  }, 180_000);
  it("keeps a cancelled build's slot until the build has stopped: the organisation's next build waits for it under ORG_MAX_ACTIVE_BUILDS", async () => {
    // Aborting the cancelled build's multipart upload is held, and the build waits for it (up to 5 s): all that
    // time it still runs on its worker.
    let releaseAbort = () => undefined as void;
    const abortHeld = new Promise<void>((resolve) => (releaseAbort = resolve));
    const s3 = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), {
      hold: (method, url) => (method === 'DELETE' && url.includes('uploadId=') ? abortHeld : undefined),
    });
    const app = await startTestApp('all', {
      QUEUE_PREFIX: uniqueQueuePrefix(),
      S3_ENDPOINT: `http://127.0.0.1:${s3.port}`,
      WORKER_CONCURRENCY: '2',
      ORG_MAX_ACTIVE_BUILDS: '1',
      PACKAGE_ATTEMPTS: '1',
    });
    try {
      const owner = await fixtures.organisationWithKey();
      const running = await fixtures.job({ owner, inputs: Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`b${i}.tif`, raster(32 * MiB)])) });
      const next = await fixtures.job({ owner, inputs: { 'scene.tif': raster(MiB) } });
      const [runningId] = await putAll(app, [running]);
      await waitFor(
        async () => (await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: runningId } })).bytesDone > 24n * BigInt(MiB),
        60_000,
        'the first build to be uploading',
      );
      const [nextId] = await putAll(app, [next]);

      await app.http.delete(downloadPath(running)).set('Authorization', running.apiKey).expect(200);
      await waitFor(async () => s3.requests.some((r) => r.method === 'DELETE' && r.url.includes(running.workflowId)), 10_000, 'the cancelled build to abort its upload');
      // The reconciler, which frees the slots of builds that ended unseen, must not free this one either.
      await app.app.get(Reconciler).reconcile();
      // The build waits up to 5 s for its abort: all that time it holds the organisation's one slot, and the next
      // build waits in line.
      const fair = app.app.get(FairShare);
      expect(await fair.admitted()).toContain(runningId);
      expect(await fair.stateOf(nextId)).toBe('queued');
      // An admission round (every 2 s) while the cancelled build is still stopping: the next one does not start.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect((await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: nextId } })).startedAt).toBeNull();

      releaseAbort();
      const [ready] = await allReady([nextId]);
      expect(ready.status).toBe('ready');
      expect(await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: runningId } })).toMatchObject({ status: 'cancelled', readyAt: null });
    } finally {
      releaseAbort();
      await app.close();
      await s3.close();
    }
  }, 120_000);
  it("lets the worker that admitted a build release its slot, though a PUT re-queued the build between the worker's claim and its job", async () => {
    const queuePrefix = uniqueQueuePrefix();
    const api = await startTestApp('api', { QUEUE_PREFIX: queuePrefix });
    const redis = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
    // The worker's side: its own connection and queue, as in another process.
    const workerQueue = new Queue(PACKAGING_QUEUE, { connection: redis, prefix: queuePrefix });
    const activeOf = async (group: string) => Number((await redis.hget(`${queuePrefix}:fair:active`, group)) ?? 0);
    try {
      const queue = api.app.get(PackageQueue);
      const fair = api.app.get(FairShare);
      const workerFair = new FairShare(redis, api.config);
      await queue.enqueue('op-race', 'org-race');
      // A worker claims the operation; its job is not added yet.
      const [claimed] = await workerFair.claim(1, 1);
      expect(claimed.operationId).toBe('op-race');
      // A PUT finds the operation admitted with no job, and queues it; the worker's add lands in between.
      const renew = fair.renew.bind(fair);
      fair.renew = async (...args: Parameters<FairShare['renew']>) => {
        const token = await renew(...args);
        await workerQueue.add(PACKAGE_JOB, { operationId: 'op-race', admission: claimed.token }, { jobId: 'op-race' });
        return token;
      };
      expect(await queue.ensureQueued('op-race', 'org-race')).toBe('added');
      expect((await workerQueue.getJob('op-race'))!.data.admission).toBe(claimed.token);
      // The build ends: its worker releases with the token its job carries, and the slot is free.
      expect(await activeOf('org-race')).toBe(1);
      await queue.release('op-race', claimed.token);
      expect(await activeOf('org-race')).toBe(0);
      expect(await fair.stateOf('op-race')).toBe('unknown');
    } finally {
      await workerQueue.obliterate({ force: true });
      await workerQueue.close();
      const keys = await redis.keys(`${queuePrefix}:fair:*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
      await api.close();
    }
  }, 60_000);

  it("puts an admitted build back in line, its slot freed, when its job cannot be queued: it is built on the next round, not left for the reconciler", async () => {
    const queuePrefix = uniqueQueuePrefix();
    const service = await startTestApp('all', { QUEUE_PREFIX: queuePrefix, ORG_MAX_ACTIVE_BUILDS: '1', RECONCILE_SECONDS: '86400' });
    try {
      const [job] = await jobsOf(1, 64 * 1024);
      // The first add of a job fails, as when Redis blinks between the claim and the add.
      const queue = service.app.get(PackageQueue) as unknown as { admit: (operationId: string, token: string) => Promise<void> };
      const admit = queue.admit.bind(queue);
      let refused = 0;
      queue.admit = async (operationId, token) => {
        if (refused++ === 0) throw new Error('Command timed out');
        return admit(operationId, token);
      };
      const [id] = await putAll(service, [job]);

      const [operation] = await allReady([id]);
      expect(operation.attempts).toBe(1);
      expect(refused).toBeGreaterThanOrEqual(2);
      const redis = new Redis(process.env.REDIS_URL!);
      try {
        expect(await redis.hget(`${queuePrefix}:fair:active`, job.organisationId)).toBeNull();
      } finally {
        redis.disconnect();
      }
    } finally {
      await service.close();
    }
  }, 60_000);

  it('frees a slot only with the token of its current admission, and counts every admission once', async () => {
    const redis = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
    const config = testConfig();
    const fair = new FairShare(redis, config);
    const activeOf = async (group: string) => Number((await redis.hget(`${config.QUEUE_PREFIX}:fair:active`, group)) ?? 0);
    // No such job: without a token, a release is refused only while the job is queued again.
    const noJob = { job: `${config.QUEUE_PREFIX}:none:running`, completed: `${config.QUEUE_PREFIX}:none:completed`, failed: `${config.QUEUE_PREFIX}:none:failed` };
    try {
      await fair.submit('op', 'org');
      const [admitted] = await fair.claim(1, 1);
      expect(admitted.operationId).toBe('op');
      expect(await activeOf('org')).toBe(1);
      // A revive renews the admission: the ended attempt's token frees nothing, the new one frees the slot.
      const renewed = await fair.renew('op');
      expect(renewed).toBeDefined();
      expect(renewed).not.toBe(admitted.token);
      expect(await fair.release('op', noJob, admitted.token)).toBe(false);
      expect(await activeOf('org')).toBe(1);
      expect(await fair.release('op', noJob, renewed)).toBe(true);
      expect(await activeOf('org')).toBe(0);
      // A job queued under another process's token: the slot takes the job's token, unless it has moved on.
      await fair.submit('adopted', 'org');
      const [first] = await fair.claim(1, 0);
      expect(await fair.renew('adopted', { keep: true })).toBe(first.token);
      const second = (await fair.renew('adopted'))!;
      expect(await fair.adopt('adopted', first.token, 'elsewhere')).toBe(false);
      expect(await fair.adopt('adopted', second, first.token)).toBe(true);
      expect(await fair.release('adopted', noJob, first.token)).toBe(true);
      expect(await fair.adopt('adopted', first.token, second)).toBe(false);
      // A group that joins while another's build runs goes next, even when that build's release comes before the
      // next claim: the released group, with more in line, goes to the back of the round.
      await fair.submit('a1', 'backlog');
      await fair.submit('a2', 'backlog');
      const [a1] = await fair.claim(1, 0);
      expect(a1.operationId).toBe('a1');
      await fair.submit('b1', 'newcomer');
      expect(await fair.release('a1', noJob, a1.token)).toBe(true);
      expect((await fair.claim(1, 0)).map(({ operationId }) => operationId)).toEqual(['b1']);
      await fair.forget('b1');
      await fair.forget('a2');
      // An admission is undone only while its job is not queued (a finished job does not count).
      await fair.submit('undone', 'org');
      const [undone] = await fair.claim(1, 0);
      const queuedJob = { job: `${config.QUEUE_PREFIX}:undone-job`, completed: noJob.completed, failed: noJob.failed };
      await redis.hset(queuedJob.job, 'data', '{}');
      expect(await fair.unclaim('undone', undone.token, queuedJob)).toBe(false);
      expect(await fair.unclaim('undone', 'another-token', noJob)).toBe(false);
      await redis.zadd(queuedJob.failed, 1, 'undone');
      expect(await fair.unclaim('undone', undone.token, queuedJob)).toBe(true);
      expect(await fair.stateOf('undone')).toBe('queued');
      await redis.del(queuedJob.job, queuedJob.failed);
      await fair.forget('undone');
      // Released, it has nothing left to renew or free.
      expect(await fair.renew('op')).toBeUndefined();
      expect(await fair.release('op', noJob)).toBe(false);
      // An operation both admitted and in line (two revives at once) is counted once when claimed again.
      await fair.submit('again', 'other');
      await fair.claim(1, 0);
      await redis.hset(`${config.QUEUE_PREFIX}:fair:queued`, 'again', 'other');
      await redis.rpush(`${config.QUEUE_PREFIX}:fair:q:other`, 'again');
      await redis.zadd(`${config.QUEUE_PREFIX}:fair:groups`, 1, 'other');
      expect((await fair.claim(1, 0)).map(({ operationId }) => operationId)).toEqual(['again']);
      expect(await activeOf('other')).toBe(1);
    } finally {
      const keys = await redis.keys(`${config.QUEUE_PREFIX}:fair:*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    }
  });
});
