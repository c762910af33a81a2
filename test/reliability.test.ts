import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { MAINTENANCE_QUEUE, PACKAGING_QUEUE } from '../src/platform/queues/queue-names.js';
import { MaintenanceWorker } from '../src/operations/maintenance/maintenance.worker.js';
import { StorageRepository } from '../src/storage/storage.repository.js';
import { download, downloadPath, Fixtures, inspectQueue, inspectZip, onDatabaseOfItsOwn, sha256, startTestApp, testConfig, uniqueQueuePrefix, type SeededJob, type TestApp } from './support/harness.js';
import { freePort, spawnService, startPrivateRedis, startRelay, startS3Process, startS3Proxy, waitFor, type Child } from './support/processes.js';

const MiB = 1024 * 1024;
const raster = (bytes: number) => Buffer.concat([Buffer.from('II*\0'), randomBytes(bytes - 4)]);
/** Enough bands that a build takes a few seconds on loopback, long enough to interrupt. */
/** The bucket of a path-style request's URL. */
const bucketOf = (url: string) => url.split(/[/?]/)[1];
const bands = (count: number, bytes: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`b${i}.tif`, raster(bytes)]));

/** A ListObjectsV2 answer as S3 gives it, for a proxy to send instead of s3rver's (which lists every object STANDARD, and ignores encoding-type). */
function listBucketResult(prefix: string, objects: Array<{ key: string; etag: string; size: number; storageClass?: string }>, encodingType?: 'url'): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
    `<Name>test-assets</Name><Prefix>${prefix}</Prefix><KeyCount>${objects.length}</KeyCount><MaxKeys>1000</MaxKeys>` +
    `${encodingType ? `<EncodingType>${encodingType}</EncodingType>` : ''}<IsTruncated>false</IsTruncated>` +
    objects
      .map(
        (o) =>
          `<Contents><Key>${o.key}</Key><LastModified>2026-12-01T00:00:00.000Z</LastModified><ETag>"${o.etag}"</ETag><Size>${o.size}</Size><StorageClass>${o.storageClass ?? 'STANDARD'}</StorageClass></Contents>`,
      )
      .join('') +
    '</ListBucketResult>'
  );
}

describe('reliability under faults', () => {
  let fixtures: Fixtures;
  let scratch: string;

  beforeAll(async () => {
    fixtures = await Fixtures.create();
    scratch = await mkdtemp(path.join(tmpdir(), 'faults-'));
  });

  afterAll(async () => {
    await fixtures.close();
    await rm(scratch, { recursive: true, force: true });
  });

  const operationOf = (id: string) => fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id } });

  /**
   * A job of these inputs, packaged through `service` with Prefer: wait: the answer must be ready, and the ZIP
   * must hold every input byte for byte.
   */
  async function packageAndCheck(service: TestApp, sources: Record<string, Buffer>, zipName: string): Promise<void> {
    const job = await fixtures.job({ inputs: sources });
    const { body } = await service.http.put(downloadPath(job)).set('Authorization', job.apiKey).set('Prefer', 'wait=30').expect(200);
    expect(body.status).toBe('ready');
    const zipFile = path.join(scratch, zipName);
    await writeFile(zipFile, (await download(body.signed_url)).body);
    const entries = inspectZip(zipFile).entries.filter((entry) => entry.name !== 'manifest.json');
    expect(Object.fromEntries(entries.map((entry) => [entry.name, entry.sha256]))).toEqual(
      Object.fromEntries(Object.entries(sources).map(([name, content]) => [`inputs/${name}`, sha256(content)])),
    );
  }

  /** PUTs the job and waits until a worker has started streaming it; returns the operation id. */
  async function requestAndAwaitBuild(app: TestApp, job: SeededJob): Promise<string> {
    const { body } = await app.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(200);
    await waitFor(async () => (await operationOf(body.id)).bytesDone > 0n, 30_000, 'the build to be under way');
    return body.id;
  }

  /** A job, an API and a spawned worker (`node dist/main.js worker`, as production runs it) to build it, stopped by the test. */
  async function buildOnSpawnedWorker(inputs: Record<string, Buffer>, graceSeconds: number, workerEnv: NodeJS.ProcessEnv = {}) {
    const job = await fixtures.job({ inputs });
    const queuePrefix = uniqueQueuePrefix();
    const api = await startTestApp('api', { QUEUE_PREFIX: queuePrefix });
    const env = { QUEUE_PREFIX: queuePrefix, SHUTDOWN_GRACE_SECONDS: String(graceSeconds), WORKER_HEALTH_PORT: String(await freePort()), LOG_LEVEL: 'info', ...workerEnv };
    return { job, queuePrefix, api, stopping: spawnService('worker', env) };
  }

  /**
   * SIGTERM to a worker building `operationId`: it exits cleanly, and its build is back in the queue at once, no
   * attempt spent, not left active until its lock lapses and counted as stalled.
   */
  async function stopAndExpectHandedBack(stopping: Child, operationId: string, queuePrefix: string): Promise<void> {
    await stopping.kill('SIGTERM');
    expect(await stopping.exitedCleanly()).toBe(true);

    expect(stopping.output()).toContain('handed back to the queue at shutdown');
    expect((await operationOf(operationId)).status).toBe('pending');
    const queued = await inspectQueue(queuePrefix, async (queue) => {
      const back = await queue.getJob(operationId);
      return { attemptsMade: back?.attemptsMade, state: await back?.getState() };
    });
    expect(queued).toEqual({ attemptsMade: 0, state: 'delayed' });
  }

  it('a worker killed with SIGKILL mid-build leaves the operation pending; another worker completes one sound package', async () => {
    const inputs = bands(6, 48 * MiB);
    const job = await fixtures.job({ inputs, outputs: { 'result.json': '{"ok":true}' } });
    const queuePrefix = uniqueQueuePrefix();
    const workerEnv = { QUEUE_PREFIX: queuePrefix, WORKER_LOCK_SECONDS: '3', WORKER_HEALTH_PORT: String(await freePort()) };
    const api = await startTestApp('api', { QUEUE_PREFIX: queuePrefix });
    const doomed = spawnService('worker', workerEnv);
    let rescuer: TestApp | undefined;
    try {
      const operationId = await requestAndAwaitBuild(api, job);

      await doomed.kill('SIGKILL');

      const interrupted = await operationOf(operationId);
      expect(interrupted.status).toBe('pending');
      // The rescuer runs in this busy test process: a 3 s lock could lapse under load while it builds.
      rescuer = await startTestApp('worker', { ...workerEnv, WORKER_LOCK_SECONDS: '10' });
      const ready = await waitFor(async () => {
        const operation = await operationOf(operationId);
        return operation.status === 'ready' ? operation : undefined;
      }, 150_000, 'the rescuing worker to finish');

      expect(ready.attempts).toBeGreaterThanOrEqual(2);
      expect(await fixtures.prisma.downloadOperation.count({ where: { jobId: job.jobId } })).toBe(1);
      const { body: answer } = await api.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(200);
      expect(answer).toMatchObject({ id: operationId, status: 'ready' });
      const zipFile = path.join(scratch, 'rescued.zip');
      const fetched = await download(answer.signed_url);
      await writeFile(zipFile, fetched.body);
      expect(sha256(fetched.body)).toBe(ready.sha256);
      const zip = inspectZip(zipFile);
      expect(zip.testzip).toBeNull();
      for (const [name, content] of Object.entries(inputs)) {
        expect(zip.entries.find((entry) => entry.name === `inputs/${name}`)?.sha256).toBe(sha256(content));
      }
    } finally {
      await doomed.kill('SIGKILL');
      await rescuer?.close();
      await api.close();
    }
  }, 240_000);

  it('on SIGTERM with no grace left, a worker hands its build back to the queue and exits cleanly', async () => {
    const { job, queuePrefix, api, stopping } = await buildOnSpawnedWorker(bands(4, 48 * MiB), 0);
    let next: TestApp | undefined;
    try {
      const operationId = await requestAndAwaitBuild(api, job);

      await stopAndExpectHandedBack(stopping, operationId, queuePrefix);

      next = await startTestApp('worker', { QUEUE_PREFIX: queuePrefix });
      await waitFor(async () => (await operationOf(operationId)).status === 'ready', 60_000, 'the next worker to finish');
    } finally {
      await stopping.kill('SIGKILL');
      await next?.close();
      await api.close();
    }
  }, 120_000);

  it('on SIGTERM while S3 does not answer deletions, a worker still hands its build back before it cuts its connections', async () => {
    // Every DELETE of an object waits until the end of the test (a multipart upload's abort still goes through).
    let release = () => undefined as void;
    const deletionsHeld = new Promise<void>((resolve) => (release = resolve));
    const proxy = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), {
      hold: (method, url) => (method === 'DELETE' && !url.includes('uploadId=') ? deletionsHeld : undefined),
    });
    const { job, queuePrefix, api, stopping } = await buildOnSpawnedWorker(bands(4, 48 * MiB), 0, { S3_ENDPOINT: `http://127.0.0.1:${proxy.port}` });
    try {
      const operationId = await requestAndAwaitBuild(api, job);

      await stopAndExpectHandedBack(stopping, operationId, queuePrefix);
    } finally {
      release();
      await stopping.kill('SIGKILL');
      await api.close();
      await proxy.close();
    }
  }, 120_000);

  it('a signal repeated while a worker stops (Ctrl-C through its launcher, a supervisor asking twice) does not cut its hand-back short', async () => {
    const { job, api, stopping } = await buildOnSpawnedWorker(bands(8, 64 * MiB), 1);
    try {
      const operationId = await requestAndAwaitBuild(api, job);

      stopping.process.kill('SIGTERM');
      await waitFor(async () => stopping.output().includes('SIGTERM received'), 10_000, 'the worker to start stopping');
      stopping.process.kill('SIGTERM');
      stopping.process.kill('SIGINT');

      expect(await stopping.exitedCleanly()).toBe(true);
      expect(stopping.output()).toContain('received again: still stopping');
      expect(stopping.output()).toContain('handed back to the queue at shutdown');
      expect((await operationOf(operationId)).status).toBe('pending');
    } finally {
      await stopping.kill('SIGKILL');
      await api.close();
    }
  }, 90_000);

  it('on SIGTERM with grace left, a worker finishes its running build before it exits', async () => {
    const job = await fixtures.job({ inputs: bands(3, 32 * MiB) });
    const queuePrefix = uniqueQueuePrefix();
    const api = await startTestApp('api', { QUEUE_PREFIX: queuePrefix });
    const stopping = spawnService('worker', { QUEUE_PREFIX: queuePrefix, SHUTDOWN_GRACE_SECONDS: '60', WORKER_HEALTH_PORT: String(await freePort()) });
    try {
      const operationId = await requestAndAwaitBuild(api, job);

      await stopping.kill('SIGTERM');
      expect(await stopping.exitedCleanly()).toBe(true);

      const operation = await operationOf(operationId);
      expect(operation.status).toBe('ready');
      expect(operation.attempts).toBe(1);
    } finally {
      await stopping.kill('SIGKILL');
      await api.close();
    }
  }, 90_000);

  it('a shutdown while a long maintenance run holds its worker still hands the running build back within the grace period', async () => {
    const queuePrefix = uniqueQueuePrefix();
    const api = await startTestApp('api', { QUEUE_PREFIX: queuePrefix });
    const worker = await startTestApp('worker', { QUEUE_PREFIX: queuePrefix, SHUTDOWN_GRACE_SECONDS: '1', RETENTION_SWEEP_SECONDS: '1' });
    // A maintenance run that takes its time (a sweep through a large backlog, a slow S3): 12 s, where the grace is 1 s.
    let longRunStarted = false;
    let closed = false;
    Object.assign(worker.app.get(MaintenanceWorker), {
      run: () => {
        longRunStarted = true;
        return new Promise((resolve) => setTimeout(resolve, 12_000));
      },
    });
    try {
      const job = await fixtures.job({ inputs: bands(8, 64 * MiB) });
      const operationId = await requestAndAwaitBuild(api, job);
      await waitFor(async () => longRunStarted, 20_000, 'the long maintenance run to be running');

      await worker.close();
      closed = true;

      // Handed back: waiting or delayed in the queue, not left active for another worker to find stalled.
      expect(['waiting', 'delayed', 'prioritized']).toContain(await inspectQueue(queuePrefix, (queue) => queue.getJobState(operationId), PACKAGING_QUEUE));
      expect((await operationOf(operationId)).status).toBe('pending');
    } finally {
      // A worker left running would sweep the run's database every second through the files that follow.
      if (!closed) await worker.close();
      await api.close();
    }
  }, 90_000);

  it('Postgres cut off and back: 503 within seconds while it is away, recovery without a restart', async () => {
    const relay = await startRelay(5432);
    const databaseUrl = new URL(process.env.DATABASE_URL!);
    databaseUrl.port = String(relay.port);
    const api = await startTestApp('api', { DATABASE_URL: databaseUrl.toString() });
    try {
      const job = await fixtures.job({ inputs: { 'a.tif': 'x' } });
      await api.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(200);

      await relay.cut();

      // Answered, not hung: the 30 s is a deadline for a request that never returns, not a speed.
      const refused = await api.http.get(downloadPath(job)).set('Authorization', `Bearer ${job.apiKey}`).timeout(30_000).expect(503);
      expect(refused.body.error.code).toBe('SERVICE_UNAVAILABLE');
      const readiness = await api.http.get('/readyz').expect(503);
      // The dependency cut is named (the shared s3rver, busy with another file's upload, may be named too).
      expect(readiness.body.error.details).toContainEqual({ field: 'postgres', message: 'postgres does not answer' });

      await relay.restore();

      await waitFor(async () => (await api.http.get('/readyz')).status === 200, 15_000, 'readiness after Postgres returns');
      const answer = await api.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(200);
      expect(answer.body.status).toBe('pending');
    } finally {
      await api.close();
      await relay.cut().catch(() => undefined);
    }
  }, 60_000);

  it('Redis stopped and restarted: 503 while it is away (ready packages still served), recovery without a restart', async () => {
    const port = await freePort();
    let redis = await startPrivateRedis(port);
    const api = await startTestApp('api', { REDIS_URL: `redis://127.0.0.1:${port}` });
    // A worker on the same Redis: it must come back by itself too, its maintenance schedules with it.
    const worker = await startTestApp('worker', { REDIS_URL: `redis://127.0.0.1:${port}`, QUEUE_PREFIX: api.config.QUEUE_PREFIX, RECONCILE_SECONDS: '2', RETENTION_SWEEP_SECONDS: '2' });
    const schedules = async () => {
      const connection = new Redis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: 1 });
      const queue = new Queue(MAINTENANCE_QUEUE, { connection, prefix: api.config.QUEUE_PREFIX });
      try {
        return (await queue.getJobSchedulers()).map((scheduler) => scheduler.key).sort();
      } finally {
        await queue.close();
        connection.disconnect();
      }
    };
    try {
      const pending = await fixtures.job({ inputs: { 'a.tif': 'x' } });
      const fresh = await fixtures.job({ inputs: { 'a.tif': 'x' } });
      const ready = await fixtures.job({ inputs: { 'a.tif': 'x' } });
      const { body: pendingOperation } = await api.http.put(downloadPath(pending)).set('Authorization', pending.apiKey).expect(200);
      const { body: readyOperation } = await api.http.put(downloadPath(ready)).set('Authorization', ready.apiKey).expect(200);
      await fixtures.prisma.downloadOperation.update({
        where: { id: readyOperation.id },
        data: { status: 'ready', archiveKey: 'packages/r.zip', sizeBytes: 1n, readyAt: new Date(), expiresAt: new Date(Date.now() + 3_600_000) },
      });

      await redis.kill('SIGKILL');

      // Answered, not hung: the 30 s is a deadline for a request that never returns, not a speed.
      const refused = await api.http.put(downloadPath(fresh)).set('Authorization', fresh.apiKey).timeout(30_000).expect(503);
      expect(refused.body.error.code).toBe('SERVICE_UNAVAILABLE');
      const readiness = await api.http.get('/readyz').expect(503);
      // The dependency cut is named (the shared s3rver, busy with another file's upload, may be named too).
      expect(readiness.body.error.details).toContainEqual({ field: 'redis', message: 'redis does not answer' });
      const stillLive = await api.http.put(downloadPath(pending)).set('Authorization', pending.apiKey).expect(200);
      expect(stillLive.body.id).toBe(pendingOperation.id);
      expect(['pending', 'ready']).toContain(stillLive.body.status);
      const served = await api.http.put(downloadPath(ready)).set('Authorization', ready.apiKey).expect(200);
      expect(served.body.status).toBe('ready');
      expect(served.body.signed_url).toContain('packages/r.zip');

      redis = await startPrivateRedis(port);

      await waitFor(async () => (await api.http.get('/readyz')).status === 200, 15_000, 'readiness after Redis returns');
      await waitFor(async () => (await worker.http.get('/readyz')).status === 200, 15_000, 'worker readiness after Redis returns');
      const recovered = await api.http.put(downloadPath(fresh)).set('Authorization', fresh.apiKey).set('Prefer', 'wait=30').expect(200);
      expect(recovered.body.status).toBe('ready');
      // The Redis that came back is empty: the worker declares its schedules again, without a restart.
      await waitFor(async () => (await schedules()).join() === 'reconcile,retention-sweep', 15_000, 'the maintenance schedules to be declared again');
    } finally {
      await worker.close();
      await api.close();
      await redis.kill('SIGKILL');
    }
  }, 60_000);

  it('S3 stopped during a build: the build fails cleanly after its retries, and a later PUT succeeds', async () => {
    const port = await freePort();
    const directory = await mkdtemp(path.join(scratch, 's3-'));
    const buckets = ['fault-assets', 'fault-packages'];
    let s3 = await startS3Process(port, directory, buckets);
    const overrides = { S3_ENDPOINT: `http://127.0.0.1:${port}`, S3_BUCKET: 'fault-packages', S3_ASSETS_BUCKET: 'fault-assets', PACKAGE_ATTEMPTS: '2', RETRY_BASE_DELAY_MS: '200', BUILD_STALL_TIMEOUT_SECONDS: '5' };
    const local = await Fixtures.create(testConfig(overrides));
    const service = await startTestApp('all', overrides);
    try {
      const job = await local.job({ inputs: bands(6, 32 * MiB) });
      const operationId = await requestAndAwaitBuild(service, job);

      await s3.kill('SIGKILL');

      const readiness = await service.http.get('/readyz').expect(503);
      // The dependency cut is named (another may be named too: the shared Postgres or Redis, busy with another file).
      expect(readiness.body.error.details).toContainEqual({ field: 's3', message: 's3 does not answer' });
      const failed = await waitFor(async () => {
        const operation = await operationOf(operationId);
        return operation.status === 'failed' ? operation : undefined;
      }, 60_000, 'the build to fail');
      expect(failed.attempts).toBe(2);
      expect(failed.errorCode).toMatch(/^(SOURCE_READ_FAILED|UPLOAD_FAILED|STALLED|PACKAGING_FAILED)$/);
      expect(failed.readyAt).toBeNull();

      s3 = await startS3Process(port, directory, buckets);
      const { body: retried } = await service.http.put(downloadPath(job)).set('Authorization', job.apiKey).set('Prefer', 'wait=60').expect(200);
      expect(retried.id).not.toBe(operationId);
      expect(retried.status).toBe('ready');
    } finally {
      await service.close();
      await local.close();
      await s3.kill('SIGKILL');
    }
  }, 120_000);

  it('a failed attempt is retried whatever its sources are called: an object named "installed.tif" is not taken for a stalled job', async () => {
    // Reads of that object lose their answers until the first attempt has failed (SOURCE_READ_FAILED, its
    // message naming the object); the retry reads it.
    let failReads = true;
    const proxy = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), {
      swallow: (method, url) => failReads && method === 'GET' && url.includes('/installed.tif'),
    });
    const service = await startTestApp('all', { S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`, PACKAGE_ATTEMPTS: '3', RETRY_BASE_DELAY_MS: '500' });
    try {
      const job = await fixtures.job({ inputs: { 'installed.tif': raster(MiB) } });
      const { body } = await service.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(200);
      const firstFailure = await waitFor(async () => {
        const operation = await operationOf(body.id);
        return operation.errorCode || operation.status !== 'pending' ? operation : undefined;
      }, 60_000, 'the first attempt to fail');
      expect(firstFailure).toMatchObject({ status: 'pending', errorCode: 'SOURCE_READ_FAILED' });
      failReads = false;

      const settled = await waitFor(async () => {
        const operation = await operationOf(body.id);
        return operation.status === 'pending' ? undefined : operation;
      }, 60_000, 'the retry to finish');
      expect(settled).toMatchObject({ status: 'ready', attempts: 2 });
    } finally {
      failReads = false;
      await service.close();
      await proxy.close();
    }
  }, 120_000);

  it('an archived source fails the build at once, without spending its other attempts re-reading the rest', async () => {
    // S3 answers 403 InvalidObjectState to a GET of a Glacier or Deep Archive object that is not restored.
    const proxy = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), {
      answer: (method, url) =>
        method === 'GET' && url.includes('/cold.tif')
          ? {
              status: 403,
              headers: { 'content-type': 'application/xml' },
              body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidObjectState</Code><Message>The operation is not valid for the object\'s storage class</Message><StorageClass>GLACIER</StorageClass></Error>',
            }
          : undefined,
    });
    const service = await startTestApp('all', { S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`, PACKAGE_ATTEMPTS: '3', RETRY_BASE_DELAY_MS: '200' });
    try {
      const job = await fixtures.job({ inputs: { 'a.tif': raster(3 * MiB), 'cold.tif': raster(MiB) } });
      const { body } = await service.http.put(downloadPath(job)).set('Authorization', job.apiKey).set('Prefer', 'wait=30').expect(200);

      expect(body).toMatchObject({ status: 'failed', error: { code: 'SOURCE_READ_FAILED', message: 'an asset of the job run could not be read' } });
      // The build's job has failed for good in the queue after one attempt: no retry waits or is delayed.
      const queued = await waitFor(
        () =>
          inspectQueue(service.config.QUEUE_PREFIX, async (queue) => {
            const job = await queue.getJob(body.id);
            const state = await job?.getState();
            return state === 'failed' ? { state, attemptsMade: job!.attemptsMade } : undefined;
          }),
        30_000,
        'the build to fail in the queue',
      );
      expect(queued).toEqual({ state: 'failed', attemptsMade: 1 });
      expect(await operationOf(body.id)).toMatchObject({ status: 'failed', attempts: 1 });
      expect(proxy.requests.filter((r) => r.method === 'GET' && r.url.includes('/a.tif')).length).toBe(1);
    } finally {
      await service.close();
      await proxy.close();
    }
  }, 60_000);

  it('an archived source that its listing names is refused before any byte is read; a restored one is read', async () => {
    const job = await fixtures.job({ inputs: { 'a.tif': raster(MiB), 'cold.tif': raster(MiB), 'thawed.tif': raster(MiB) } });
    const listed: Array<{ key: string; etag: string; size: number }> = [];
    for await (const object of fixtures.storage.listObjects({ bucket: 'test-assets', prefix: job.inputsPrefix })) listed.push(object);
    const classOf = (key: string) => (key.endsWith('cold.tif') || key.endsWith('thawed.tif') ? 'GLACIER' : 'STANDARD');
    // s3rver lists every object as STANDARD: its listing of the job's inputs is answered as S3 would for these.
    const listing = () => listBucketResult(job.inputsPrefix, listed.map((o) => ({ ...o, storageClass: classOf(o.key) })));
    let coldRestored = false;
    const proxy = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), {
      answer: (method, url) =>
        method === 'GET' && url.includes('list-type=2') && decodeURIComponent(url).includes(job.inputsPrefix)
          ? { status: 200, headers: { 'content-type': 'application/xml' }, body: listing() }
          : undefined,
      // A HEAD of an archived object says whether a restored copy is there (x-amz-restore).
      answerHeaders: (method, url, headers) => {
        if (method !== 'HEAD' || !/\/(cold|thawed)\.tif/.test(url)) return headers;
        const restored = url.includes('/thawed.tif') || coldRestored;
        return { ...headers, 'x-amz-storage-class': 'GLACIER', ...(restored ? { 'x-amz-restore': 'ongoing-request="false", expiry-date="Fri, 01 Jan 2027 00:00:00 GMT"' } : {}) };
      },
    });
    const service = await startTestApp('all', { S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`, PACKAGE_ATTEMPTS: '3', RETRY_BASE_DELAY_MS: '200' });
    try {
      const { body } = await service.http.put(downloadPath(job)).set('Authorization', job.apiKey).set('Prefer', 'wait=30').expect(200);

      expect(body).toMatchObject({ status: 'failed', error: { code: 'SOURCE_READ_FAILED' } });
      expect(await operationOf(body.id)).toMatchObject({ attempts: 1, bytesDone: 0n });
      expect(proxy.requests.filter((r) => r.method === 'GET' && !r.url.includes('list-type')).length).toBe(0);

      // Restored: the next PUT builds it, the thawed object too.
      coldRestored = true;
      const { body: rebuilt } = await service.http.put(downloadPath(job)).set('Authorization', job.apiKey).set('Prefer', 'wait=30').expect(200);
      expect(rebuilt).toMatchObject({ status: 'ready' });
    } finally {
      await service.close();
      await proxy.close();
    }
  }, 60_000);

  it('a package larger than MAX_PACKAGE_GIB (5 TiB by default) is refused before any byte moves; the next PUT starts a new operation', async () => {
    // The listing says what S3 would for two 3 TiB rasters: a 6 TiB ZIP, more than most stores take as one object.
    const job = await fixtures.job({ inputs: { 'a.tif': raster(MiB), 'b.tif': raster(MiB) } });
    const listed: Array<{ key: string; etag: string; size: number }> = [];
    for await (const object of fixtures.storage.listObjects({ bucket: 'test-assets', prefix: job.inputsPrefix })) listed.push({ ...object, size: 3 * 1024 ** 4 });
    const proxy = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), {
      answer: (method, url) =>
        method === 'GET' && url.includes('list-type=2') && decodeURIComponent(url).includes(job.inputsPrefix)
          ? { status: 200, headers: { 'content-type': 'application/xml' }, body: listBucketResult(job.inputsPrefix, listed) }
          : undefined,
    });
    const service = await startTestApp('all', { S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`, PACKAGE_ATTEMPTS: '3', RETRY_BASE_DELAY_MS: '200' });
    try {
      const { body } = await service.http.put(downloadPath(job)).set('Authorization', job.apiKey).set('Prefer', 'wait=30').expect(200);

      expect(body).toMatchObject({ status: 'failed', error: { code: 'PACKAGE_TOO_LARGE', message: "the job run's assets are larger than one package may be" } });
      expect(await operationOf(body.id)).toMatchObject({ attempts: 1, bytesDone: 0n, archiveKey: null });
      // Nothing of this job read, no upload started. (Other tests' leftovers that this service's sweep deletes
      // meanwhile are not this job's business.)
      const ofThisJob = proxy.requests.filter((r) => decodeURIComponent(r.url).includes(job.workflowId));
      expect(ofThisJob.filter((r) => !(r.method === 'GET' && r.url.includes('list-type=2')))).toEqual([]);
      // Not a permanent failure: it depends on MAX_PACKAGE_GIB, which an operator may raise. The next PUT starts a
      // new operation rather than answering the old failure.
      const { body: again } = await service.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(200);
      expect(again).toEqual(expect.objectContaining({ status: 'pending', signed_url: '', workflowId: job.workflowId }));
      expect(again.id).not.toBe(body.id);
      expect(again).not.toHaveProperty('error');
      expect(await operationOf(body.id)).toMatchObject({ status: 'failed', errorCode: 'PACKAGE_TOO_LARGE' });
    } finally {
      await service.close();
      await proxy.close();
    }
  }, 60_000);

  it('lists keys URL-encoded (EncodingType=url): a key with a carriage return is read, spaces and plus signs too', async () => {
    // Unencoded, a carriage return in a key reaches the SDK's XML parser, which makes it a line feed: another key.
    const job = await fixtures.job({ inputs: { 'a b+c.tif': raster(64 * 1024), 'scan\rline.tif': raster(64 * 1024) } });
    // (s3rver's own listing has the line feed already: the objects are looked up by their true keys.)
    const listed = await Promise.all(['a b+c.tif', 'scan\rline.tif'].map(async (name) => (await fixtures.storage.headObject('test-assets', `${job.inputsPrefix}${name}`))!));
    // s3rver ignores encoding-type: the listing of the job's inputs is answered as S3 would, encoded when asked.
    const encoded = (key: string) => encodeURIComponent(key).replaceAll('%20', '+');
    const listing = (encode: boolean) =>
      listBucketResult(
        job.inputsPrefix,
        listed.map((o) => ({ ...o, key: encode ? encoded(o.key) : o.key })),
        encode ? 'url' : undefined,
      );
    const proxy = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), {
      answer: (method, url) =>
        method === 'GET' && url.includes('list-type=2') && decodeURIComponent(url).includes(job.inputsPrefix)
          ? { status: 200, headers: { 'content-type': 'application/xml' }, body: listing(url.includes('encoding-type=url')) }
          : undefined,
    });
    const service = await startTestApp('all', { S3_ENDPOINT: `http://127.0.0.1:${proxy.port}` });
    try {
      const { body } = await service.http.put(downloadPath(job)).set('Authorization', job.apiKey).set('Prefer', 'wait=30').expect(200);

      expect(body.status).toBe('ready');
      const zipFile = path.join(scratch, 'encoded-keys.zip');
      await writeFile(zipFile, (await download(body.signed_url)).body);
      const names = inspectZip(zipFile).entries.map((entry) => entry.name).filter((name) => name.startsWith('inputs/'));
      // A control character in a name becomes "_" in the ZIP (entry names are made safe).
      expect(names).toEqual(['inputs/a b+c.tif', 'inputs/scan_line.tif']);
    } finally {
      await service.close();
      await proxy.close();
    }
  }, 60_000);

  it('reads assets from a bucket in another region: one redirect, then every read is signed for that region', async () => {
    // As AWS does: a request signed for a region other than its bucket's is answered 301 PermanentRedirect
    // with the bucket's region in x-amz-bucket-region (a HEAD gets no body). The packages bucket stays in
    // S3_REGION (us-east-1 here).
    // The signing region, from the Authorization header or, in a presigned URL, X-Amz-Credential.
    const regionOf = ({ url, headers }: { url: string; headers: import('node:http').IncomingHttpHeaders }) =>
      /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(headers.authorization ?? decodeURIComponent(url))?.[1];
    const home: Record<string, string> = { 'test-assets': 'eu-west-1', 'test-packages': 'us-east-1' };
    const proxy = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), {
      answer: (method, url, headers) => {
        const region = home[bucketOf(url)];
        if (!region || regionOf({ url, headers }) === region) return undefined;
        return {
          status: 301,
          headers: { 'content-type': 'application/xml', 'x-amz-bucket-region': region },
          body:
            method === 'HEAD'
              ? undefined
              : '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.</Message></Error>',
        };
      },
    });
    const service = await startTestApp('all', { S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`, PACKAGE_ATTEMPTS: '1' });
    try {
      await packageAndCheck(service, { 'big.tif': raster(20 * MiB), 'a.tif': raster(MiB), 'b.json': Buffer.from('{"b":1}') }, 'other-region.zip');

      const assetRequests = proxy.requests.filter((request) => bucketOf(request.url) === 'test-assets');
      // The first listings (inputs and outputs, made together) are redirected; every request after them goes to
      // the bucket's region.
      const redirected = assetRequests.filter((request) => regionOf(request) !== 'eu-west-1');
      expect(redirected.length).toBeGreaterThanOrEqual(1);
      expect(redirected.length).toBeLessThanOrEqual(2);
      expect(redirected.every((request) => request.url.includes('list-type=2'))).toBe(true);
      // Operators see the redirects, and every other request, on /metrics.
      const { text: metrics } = await service.http.get('/metrics').expect(200);
      expect(metrics).toContain(`s3_requests_total{operation="ListObjectsV2",status="301"} ${redirected.length}`);
      expect(metrics).toMatch(/s3_requests_total\{operation="GetObject",status="20[06]"\} [1-9]/);
      expect(metrics).toMatch(/s3_requests_total\{operation="UploadPart",status="200"\} [1-9]/);
      expect(assetRequests.filter((request) => request.method === 'GET' && !request.url.includes('list-type=2')).length).toBeGreaterThanOrEqual(3);
      const packageRequests = proxy.requests.filter((request) => bucketOf(request.url) === 'test-packages');
      expect(packageRequests.length).toBeGreaterThan(0);
      expect(packageRequests.every((request) => regionOf(request) === 'us-east-1')).toBe(true);
    } finally {
      await service.close();
      await proxy.close();
    }
  }, 60_000);

  it('reads a Requester Pays asset bucket named in REQUESTER_PAYS_BUCKETS, agreeing to pay on every read of it and on nothing else', async () => {
    // As S3 does for a Requester Pays bucket: a read without x-amz-request-payer: requester is refused 403.
    const proxy = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), {
      answer: (method, url, headers) =>
        bucketOf(url) === 'test-assets' && headers['x-amz-request-payer'] !== 'requester'
          ? { status: 403, headers: { 'content-type': 'application/xml' }, body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>' }
          : undefined,
    });
    const service = await startTestApp('all', { S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`, REQUESTER_PAYS_BUCKETS: 'test-assets', PACKAGE_ATTEMPTS: '1' });
    try {
      await packageAndCheck(service, { 'scene.tif': raster(12 * MiB), 'scene.json': Buffer.from('{"id":"scene"}') }, 'requester-pays.zip');

      // The packages bucket is the service's own: nothing there is paid for as a requester.
      const packageRequests = proxy.requests.filter((request) => bucketOf(request.url) === 'test-packages');
      expect(packageRequests.length).toBeGreaterThan(0);
      expect(packageRequests.filter((request) => request.headers['x-amz-request-payer'] !== undefined)).toEqual([]);
    } finally {
      await service.close();
      await proxy.close();
    }
  }, 60_000);

  it('the scheduled retention sweep deletes an expired package and marks it expired', async () => {
    // On a database of its own: any other worker of the run sweeps the shared one, and could expire the
    // package in place of the schedule under test.
    await onDatabaseOfItsOwn(async ({ url, fixtures: own }) => {
      const worker = await startTestApp('worker', { DATABASE_URL: url, RETENTION_SWEEP_SECONDS: '1' });
      try {
        const job = await own.job({ inputs: { 'a.tif': 'x' } });
        const archiveKey = `packages/${job.workflowId}/${job.jobId}/old.zip`;
        await own.storage.putObject('test-packages', archiveKey, Buffer.from('PK'), 'application/zip');
        const operation = await own.prisma.downloadOperation.create({
          data: { workflowId: job.workflowId, jobId: job.jobId, status: 'ready', archiveKey, sizeBytes: 2n, readyAt: new Date(Date.now() - 7_200_000), expiresAt: new Date(Date.now() - 1_000) },
        });

        const expired = await waitFor(async () => {
          const current = await own.prisma.downloadOperation.findUniqueOrThrow({ where: { id: operation.id } });
          return current.status === 'expired' ? current : undefined;
        }, 20_000, 'the sweep');

        expect(expired.archiveKey).toBe(archiveKey);
        const storage = worker.app.get(StorageRepository);
        // The operation is marked expired first, then its object deleted: the deletion may lag the mark by a moment.
        const gone = () => storage.client.send(new HeadObjectCommand({ Bucket: 'test-packages', Key: archiveKey })).then(() => false, (error: Error) => error.name === 'NotFound');
        await waitFor(gone, 10_000, 'the expired package to be deleted');
        // One schedule in Redis, whatever the number of workers: BullMQ hands each run to one of them.
        const schedulers = await inspectQueue(worker.config.QUEUE_PREFIX, (queue) => queue.getJobSchedulers(), MAINTENANCE_QUEUE);
        expect(schedulers.sort((a, b) => a.key.localeCompare(b.key))).toEqual([
          expect.objectContaining({ key: 'reconcile', every: 60_000 }),
          expect.objectContaining({ key: 'retention-sweep', every: 1000 }),
        ]);
      } finally {
        await worker.close();
      }
    });
  }, 60_000);
});
