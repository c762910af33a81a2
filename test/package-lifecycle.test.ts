import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { OperationRepository } from '../src/downloads/operation.repository.js';
import { PackageObjects } from '../src/downloads/package-objects.js';
import { RetentionService } from '../src/operations/maintenance/retention.service.js';
import { OperatorService } from '../src/operations/operator.service.js';
import type { AppConfig } from '../src/platform/config/app-config.js';
import { ensureDatabase, migrate } from '../src/platform/prisma/migrator.js';
import { StorageRepository } from '../src/storage/storage.repository.js';
import { createDatabaseOfItsOwn, download, downloadPath, Fixtures, inspectQueue, startTestApp, testConfig, uniqueId, type OwnDatabase, type SeededJob, type TestApp } from './support/harness.js';
import { freePort, startS3Process, startS3Proxy, waitFor, type Child } from './support/processes.js';
import { dropDatabase } from './support/run-resources.mjs';

const MiB = 1024 * 1024;
const DAY_MS = 24 * 3600 * 1000;
const raster = (bytes: number) => Buffer.concat([Buffer.from('II*\0'), randomBytes(bytes - 4)]);

/**
 * The life of a package, from build to deletion, checked where it lands: after any sequence of builds,
 * failures and expiries, the packages prefix holds exactly the objects of ready operations.
 */
describe('packages: built, failed, expired, swept', () => {
  describe('on an S3 of its own, whose answers can be lost', () => {
    const buckets = { assets: 'life-assets', packages: 'life-packages' };
    let scratch: string;
    let s3: Child;
    let proxy: Awaited<ReturnType<typeof startS3Proxy>>;
    let fixtures: Fixtures;
    let service: TestApp;
    /** The key whose CompleteMultipartUpload answer is to be lost once. */
    let swallowCompleteOf: string | undefined;
    /** HEADs of this workflow's package objects lose their answers: the worker cannot look at what it completed. */
    let swallowHeadsOf: string | undefined;

    // A database of its own: the other test files' services sweep the shared one with their own packages
    // bucket, as one deployment would, and would expire this block's packages in a bucket they do not hold.
    const database = uniqueId('jdtest_lifecycle').replaceAll('-', '_');
    const databaseUrl = new URL(process.env.DATABASE_URL!);
    databaseUrl.pathname = `/${database}`;

    beforeAll(async () => {
      await ensureDatabase(databaseUrl.toString());
      await migrate(databaseUrl.toString());
      scratch = await mkdtemp(path.join(tmpdir(), 'lifecycle-'));
      const s3Port = await freePort();
      s3 = await startS3Process(s3Port, scratch, [buckets.assets, buckets.packages]);
      proxy = await startS3Proxy(s3Port, {
        swallow: (method, url) => {
          if (swallowHeadsOf && method === 'HEAD' && url.includes(swallowHeadsOf)) return true;
          if (!swallowCompleteOf || method !== 'POST' || !url.includes('uploadId=') || !url.includes(swallowCompleteOf)) return false;
          swallowCompleteOf = undefined;
          return true;
        },
      });
      const overrides = {
        DATABASE_URL: databaseUrl.toString(),
        S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`,
        S3_BUCKET: buckets.packages,
        S3_ASSETS_BUCKET: buckets.assets,
        PACKAGE_ATTEMPTS: '1',
        PACKAGE_DELETE_GRACE_SECONDS: '0',
        RETENTION_SWEEP_SECONDS: '86400',
        // The test edits expiries by hand, which a reused ready lookup would not see for a second.
        READY_CACHE_SECONDS: '0',
      };
      fixtures = await Fixtures.create(testConfig(overrides));
      service = await startTestApp('all', overrides);
    }, 30_000);

    afterAll(async () => {
      await service.close();
      await fixtures.close();
      await proxy.close();
      await s3.kill('SIGKILL');
      await rm(scratch, { recursive: true, force: true });
      await dropDatabase(database);
    });

    const putAndWait = (job: SeededJob) =>
      service.http.put(downloadPath(job)).set('Authorization', job.apiKey).set('Prefer', 'wait=60').expect(200).then((response) => response.body);
    const packageKeys = async () => {
      const listed = await fixtures.storage.client.send(new ListObjectsV2Command({ Bucket: buckets.packages, Prefix: 'packages/' }));
      return (listed.Contents ?? []).map((object) => object.Key!).sort();
    };
    const pastExpiry = (id: string) => fixtures.prisma.downloadOperation.update({ where: { id }, data: { expiresAt: new Date(Date.now() - 1_000) } });

    it('holds exactly the objects of ready operations after builds, failures and expiries', async () => {
      const kept = await fixtures.job({ inputs: { 'a.tif': raster(256 * 1024) } });
      expect((await putAndWait(kept)).status).toBe('ready');

      // Expired by the next PUT, which builds a new package.
      const rebuilt = await fixtures.job({ inputs: { 'b.tif': raster(256 * 1024) } });
      const first = await putAndWait(rebuilt);
      await pastExpiry(first.id);
      const second = await putAndWait(rebuilt);
      expect(second.id).not.toBe(first.id);
      expect(second.status).toBe('ready');

      // Expired by the sweep.
      const swept = await fixtures.job({ inputs: { 'c.tif': raster(256 * 1024) } });
      const sweptOperation = await putAndWait(swept);
      await pastExpiry(sweptOperation.id);

      // The upload completes in S3, but its answer never reaches the worker, nor does a look at the object (which
      // would show the completion happened): the build fails, with a whole object at its key.
      const timedOut = await fixtures.job({ inputs: { 'd.tif': raster(12 * MiB) } });
      swallowCompleteOf = timedOut.workflowId;
      swallowHeadsOf = timedOut.workflowId;
      const failed = await putAndWait(timedOut);
      swallowHeadsOf = undefined;
      expect(failed).toMatchObject({ status: 'failed', error: { code: 'UPLOAD_FAILED' } });

      // Nothing to package.
      const empty = await fixtures.job({});
      expect((await putAndWait(empty)).error.code).toBe('NO_ASSETS');

      await service.app.get(RetentionService).sweep();

      const ready = await fixtures.prisma.downloadOperation.findMany({ where: { status: 'ready', workflowId: { in: [kept, rebuilt, swept, timedOut, empty].map((job) => job.workflowId) } } });
      expect(ready.map((operation) => operation.id).sort()).toEqual([(await putAndWait(kept)).id, second.id].sort());
      expect(await packageKeys()).toEqual(ready.map((operation) => operation.archiveKey).sort());
      expect(await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: sweptOperation.id } })).toMatchObject({ status: 'expired' });
      expect(await fixtures.prisma.packageObject.count({ where: { bucket: buckets.packages } })).toBe(0);
    }, 120_000);
  });

  describe('on the shared S3', () => {
    let database: OwnDatabase;
    let fixtures: Fixtures;
    let service: TestApp;

    // A database of its own: every other file's worker sweeps the shared one at its start, some with no grace
    // (PACKAGE_DELETE_GRACE_SECONDS=0) or on an S3 of their own, and would expire or delete what these tests
    // expect to find, or do the sweeping a test here expects of its own service.
    beforeAll(async () => {
      database = await createDatabaseOfItsOwn('jdtest_lifecycle');
      const overrides = { DATABASE_URL: database.url, PACKAGE_DELETE_GRACE_SECONDS: '0', RETENTION_SWEEP_SECONDS: '86400', MAX_ENTRIES: '3' };
      fixtures = await Fixtures.create(testConfig(overrides));
      service = await startTestApp('all', overrides);
    }, 30_000);

    afterAll(async () => {
      await service?.close();
      await fixtures?.close();
      await database?.drop();
    });

    const put = (job: SeededJob, wait = 0) => {
      const request = service.http.put(downloadPath(job)).set('Authorization', job.apiKey);
      return (wait ? request.set('Prefer', `wait=${wait}`) : request).expect(200).then((response) => response.body);
    };
    const exists = (key: string) =>
      fixtures.storage.client.send(new HeadObjectCommand({ Bucket: 'test-packages', Key: key })).then(() => true, () => false);

    it('a sweep goes on past a package it cannot delete, and tries that one again later', async () => {
      const broken = await fixtures.job({ inputs: { 'a.tif': 'x' } });
      const fine = await fixtures.job({ inputs: { 'a.tif': 'x' } });
      const fineKey = `packages/${fine.workflowId}/${fine.jobId}/old.zip`;
      await fixtures.storage.putObject('test-packages', fineKey, Buffer.from('PK'), 'application/zip');
      const expired = { status: 'ready' as const, sizeBytes: 2n, readyAt: new Date(Date.now() - 7_200_000) };
      // s3rver refuses to delete a key with an empty segment: a deletion that keeps failing.
      const stuck = await fixtures.prisma.downloadOperation.create({
        data: { workflowId: broken.workflowId, jobId: broken.jobId, ...expired, archiveKey: 'packages//stuck.zip', expiresAt: new Date(Date.now() - 2_000) },
      });
      const due = await fixtures.prisma.downloadOperation.create({
        data: { workflowId: fine.workflowId, jobId: fine.jobId, ...expired, archiveKey: fineKey, expiresAt: new Date(Date.now() - 1_000) },
      });

      await service.app.get(RetentionService).sweep();

      expect(await exists(fineKey)).toBe(false);
      expect((await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: due.id } })).status).toBe('expired');
      expect((await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: stuck.id } })).status).toBe('expired');
      const [listed] = await fixtures.prisma.packageObject.findMany({ where: { key: 'packages//stuck.zip' } });
      expect(listed).toMatchObject({ state: 'deleting' });
      // And the next sweep tries it again (its failure moves it to the back of the line: a later updated_at),
      // still without holding anything up, and keeps it listed.
      await expect(service.app.get(PackageObjects).sweep()).resolves.toBe(0);
      const [again] = await fixtures.prisma.packageObject.findMany({ where: { key: 'packages//stuck.zip' } });
      expect(again).toMatchObject({ state: 'deleting' });
      expect(again.updatedAt.getTime()).toBeGreaterThan(listed.updatedAt.getTime());
      await fixtures.prisma.packageObject.deleteMany({ where: { key: 'packages//stuck.zip' } });
    });

    it('a sweep is not held up for good by a full batch of objects it cannot delete: they go to the back of the line', async () => {
      const stuckKeys = [`packages//${uniqueId('stuck')}.zip`, `packages//${uniqueId('stuck')}.zip`];
      const realKey = `packages/${uniqueId('wf')}/job/abandoned-1.zip`;
      await fixtures.storage.putObject('test-packages', realKey, Buffer.from('PK'), 'application/zip');
      // Oldest first: the two that cannot be deleted (s3rver refuses a key with an empty segment) fill a batch of two.
      const longAgo = new Date('2000-01-01T00:00:00Z');
      await fixtures.prisma.packageObject.createMany({
        data: [
          ...stuckKeys.map((key) => ({ bucket: 'test-packages', key, state: 'deleting' as const, updatedAt: longAgo })),
          { bucket: 'test-packages', key: realKey, state: 'deleting' as const, updatedAt: new Date('2000-01-02T00:00:00Z') },
        ],
      });
      try {
        const objects = service.app.get(PackageObjects);
        const sweptAt = Date.now();
        await objects.sweep(new Date(), 2);
        // Tried and failed: behind every other object now, not first again at the next sweep.
        const stuck = await fixtures.prisma.packageObject.findMany({ where: { key: { in: stuckKeys } } });
        expect(stuck.map((row) => ({ state: row.state, movedBack: row.updatedAt.getTime() >= sweptAt }))).toEqual([
          { state: 'deleting', movedBack: true },
          { state: 'deleting', movedBack: true },
        ]);
        await objects.sweep(new Date(), 2);

        expect(await exists(realKey)).toBe(false);
        expect(await fixtures.prisma.packageObject.count({ where: { key: realKey } })).toBe(0);
      } finally {
        await fixtures.prisma.packageObject.deleteMany({ where: { key: { in: [...stuckKeys, realKey] } } });
      }
    });

    it('deletes at the next sweep, without waiting for the grace, a package whose job was removed while its deletion failed', async () => {
      const ended = `packages/${uniqueId('wf')}/job/${uniqueId('op')}-1.zip`;
      const abandoned = `packages/${uniqueId('wf')}/job/${uniqueId('op')}-2.zip`;
      for (const key of [ended, abandoned]) await fixtures.storage.putObject('test-packages', key, Buffer.from('PK'), 'application/zip');
      // Their operations are gone (removed with their job). The package was listed when it ended (no attempt);
      // the other object is an attempt's own, which an upload still in flight may write again: it waits.
      await fixtures.prisma.packageObject.createMany({
        data: [
          { bucket: 'test-packages', key: ended, operationId: randomUUID(), state: 'deleting' },
          { bucket: 'test-packages', key: abandoned, operationId: randomUUID(), attempt: 2, state: 'deleting' },
        ],
      });
      try {
        // A sweep a minute ago: the grace (0 s here) has not passed for either.
        await service.app.get(PackageObjects).sweep(new Date(Date.now() - 60_000));

        expect(await exists(ended)).toBe(false);
        expect(await exists(abandoned)).toBe(true);
      } finally {
        await fixtures.prisma.packageObject.deleteMany({ where: { key: { in: [ended, abandoned] } } });
        await fixtures.storage.deleteObject('test-packages', abandoned);
      }
    });

    it('answers a permanent failure as it is until the job changes, without a new build', async () => {
      const job = await fixtures.job({});
      const failed = await put(job, 30);
      expect(failed).toMatchObject({ status: 'failed', error: { code: 'NO_ASSETS' } });

      const again = await put(job);

      expect(again).toMatchObject({ id: failed.id, status: 'failed' });
      expect(await fixtures.prisma.downloadOperation.count({ where: { jobId: job.jobId } })).toBe(1);
      const jobs = await inspectQueue(service.config.QUEUE_PREFIX, (queue) => queue.getJobs(['waiting', 'active', 'delayed', 'completed', 'failed']));
      expect(jobs.filter((queued) => queued.data.operationId === failed.id || queued.data.operationId === again.id)).toHaveLength(1);

      await fixtures.putAll(job.outputsPrefix, { 'late.tif': 'x' });
      await service.app.get(OperatorService).registerJob({
        organisationId: job.organisationId,
        workflowId: job.workflowId,
        jobId: job.jobId,
        // Re-run: it failed this time, and left an output.
        status: 'failed',
      });
      const rebuilt = await put(job, 30);
      expect(rebuilt.id).not.toBe(failed.id);
      expect(rebuilt.status).toBe('ready');
    });

    it('refuses a job of more than MAX_ENTRIES assets before any byte moves', async () => {
      const job = await fixtures.job({ inputs: { 'a.tif': 'a', 'b.tif': 'b' }, outputs: { 'c.tif': 'c', 'd.tif': 'd' } });

      const failed = await put(job, 30);

      expect(failed).toMatchObject({ status: 'failed', error: { code: 'TOO_MANY_ENTRIES', message: 'the job run has more assets than one package may hold' } });
      const operation = await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: failed.id } });
      expect(operation).toMatchObject({ attempts: 1, bytesTotal: null, archiveKey: null });
      const listed = await fixtures.storage.client.send(new ListObjectsV2Command({ Bucket: 'test-packages', Prefix: `packages/${job.workflowId}/` }));
      expect(listed.Contents ?? []).toEqual([]);
    });

    it('GET on a ready package past its expiry answers expired, with no URL, and changes nothing', async () => {
      const job = await fixtures.job({ inputs: { 'a.tif': 'x' } });
      const ready = await put(job, 30);
      await fixtures.prisma.downloadOperation.update({ where: { id: ready.id }, data: { expiresAt: new Date(Date.now() - 1) } });

      const { body } = await service.http.get(downloadPath(job)).set('Authorization', job.apiKey).expect(200);

      expect(body).toMatchObject({ id: ready.id, status: 'expired', signed_url: '', expires_at: null });
      expect((await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: ready.id } })).status).toBe('ready');
    });

    it('sweeps a listed object whose operation is gone (its job deleted, its history pruned)', async () => {
      const prefix = `packages/${uniqueId('orphans')}/`;
      const orphans = [`${prefix}writing.zip`, `${prefix}deleting.zip`];
      for (const key of orphans) await fixtures.storage.putObject('test-packages', key, Buffer.from('PK'), 'application/zip');
      const gone = randomUUID();
      await fixtures.prisma.packageObject.createMany({
        data: [
          { bucket: 'test-packages', key: orphans[0], operationId: gone, attempt: 1, state: 'writing' },
          { bucket: 'test-packages', key: orphans[1], operationId: gone, state: 'deleting' },
        ],
      });

      await service.app.get(PackageObjects).sweep(new Date(Date.now() + 1_000));

      for (const key of orphans) expect(await exists(key)).toBe(false);
      expect(await fixtures.prisma.packageObject.count({ where: { key: { in: orphans } } })).toBe(0);
    });

    /** A pending operation on its second attempt, and the object its first attempt wrote, still listed as being written. */
    async function overtakenAttemptObject() {
      const job = await fixtures.job({ inputs: { 'a.tif': 'x' } });
      const operation = await fixtures.prisma.downloadOperation.create({ data: { workflowId: job.workflowId, jobId: job.jobId, attempts: 2 } });
      const key = `packages/${uniqueId('overtaken')}/attempt-1.zip`;
      await fixtures.storage.putObject('test-packages', key, Buffer.from('PK'), 'application/zip');
      await fixtures.prisma.packageObject.create({ data: { bucket: 'test-packages', key, operationId: operation.id, attempt: 1, state: 'writing' } });
      return { operation, key };
    }

    it('gives an overtaken attempt the whole grace from when its operation last changed, not from when it began writing', async () => {
      // Attempt 1 began writing an hour ago; attempt 2 took over a moment ago and is running.
      const { operation, key } = await overtakenAttemptObject();
      await fixtures.prisma.$executeRaw`UPDATE package_objects SET updated_at = now() - interval '1 hour' WHERE key = ${key}`;
      const objects = new PackageObjects(fixtures.prisma, service.app.get(StorageRepository), { ...service.config, PACKAGE_DELETE_GRACE_SECONDS: 600 } as AppConfig);

      await objects.sweep();
      expect(await exists(key)).toBe(true);

      // Ten minutes and more without a change: attempt 1 has had its grace.
      await fixtures.prisma.$executeRaw`UPDATE download_operations SET updated_at = now() - interval '11 minutes' WHERE id = ${operation.id}::uuid`;
      await objects.sweep();
      expect(await exists(key)).toBe(false);
      expect(await fixtures.prisma.packageObject.count({ where: { key } })).toBe(0);
    });

    it('deletes a cancelled or expired package left behind by a failed deletion at the next sweep, without the grace, and keeps a ready one', async () => {
      // Ready packages whose operation then ended, each listed for deletion just now, as cancel and expire list
      // them; their own deletion is taken to have failed, so the objects are still there.
      const objects = new PackageObjects(fixtures.prisma, service.app.get(StorageRepository), { ...service.config, PACKAGE_DELETE_GRACE_SECONDS: 600 } as AppConfig);
      const packages: Record<string, string> = {};
      for (const status of ['cancelled', 'expired', 'ready'] as const) {
        const job = await fixtures.job({ inputs: { 'a.tif': 'x' } });
        const key = `packages/${uniqueId(status)}/attempt-1.zip`;
        await fixtures.storage.putObject('test-packages', key, Buffer.from('PK'), 'application/zip');
        const operation = await fixtures.prisma.downloadOperation.create({ data: { workflowId: job.workflowId, jobId: job.jobId, attempts: 1, status, archiveKey: key } });
        if (status !== 'ready') await fixtures.prisma.packageObject.create({ data: { bucket: 'test-packages', key, operationId: operation.id, state: 'deleting' } });
        packages[status] = key;
      }

      await objects.sweep();

      expect(await exists(packages.cancelled)).toBe(false);
      expect(await exists(packages.expired)).toBe(false);
      expect(await exists(packages.ready)).toBe(true);
      expect(await fixtures.prisma.packageObject.count({ where: { key: { in: Object.values(packages) } } })).toBe(0);
    });

    it('an overtaken attempt that finishes while the sweep deletes its object records nothing: no operation is ready on an object going away', async () => {
      // Attempt 1 lost its lock and attempt 2 runs; attempt 1 still finishes its upload, as a partitioned worker may.
      const { operation, key } = await overtakenAttemptObject();
      const storage = service.app.get(StorageRepository);
      const deleteObject = storage.deleteObject.bind(storage);
      let release = () => undefined as void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let deleting = false;
      // The sweep's deletion of that object is in flight while the attempt records its package.
      storage.deleteObject = async (bucket, objectKey) => {
        if (objectKey === key) {
          deleting = true;
          await held;
        }
        return deleteObject(bucket, objectKey);
      };
      try {
        const sweeping = service.app.get(PackageObjects).sweep(new Date(Date.now() + 1_000));
        await waitFor(async () => deleting, 10_000, 'the sweep to delete the overtaken attempt\'s object');

        const readyAt = new Date();
        const marked = await service.app.get(OperationRepository).markReady(operation.id, 'test-packages', {
          bytesDone: 2n,
          archiveKey: key,
          sizeBytes: 2n,
          sha256: '0'.repeat(64),
          entryCount: 1,
          readyAt,
          expiresAt: new Date(readyAt.getTime() + 3_600_000),
        });
        release();
        await sweeping;

        expect(marked).toBe(false);
        expect(await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: operation.id } })).toMatchObject({ status: 'pending', archiveKey: null });
        expect(await exists(key)).toBe(false);
        expect(await fixtures.prisma.packageObject.count({ where: { key } })).toBe(0);
      } finally {
        release();
        storage.deleteObject = deleteObject;
      }
    });

    it('an attempt that gives up an object the sweep has already forgotten lists it again when S3 cannot delete it now', async () => {
      // The sweep deleted and forgot the overtaken attempt's object while its upload was still in flight; the
      // upload then wrote it anew, and the attempt, refused by markReady, gives it up while S3 is unavailable.
      const key = `packages/${uniqueId('rewritten')}/attempt-1.zip`;
      await fixtures.storage.putObject('test-packages', key, Buffer.from('PK'), 'application/zip');
      const storage = service.app.get(StorageRepository);
      const deleteObject = storage.deleteObject.bind(storage);
      storage.deleteObject = async (bucket, objectKey) => {
        if (objectKey === key) throw new Error('S3 is unavailable');
        return deleteObject(bucket, objectKey);
      };
      try {
        await service.app.get(PackageObjects).abandon({ bucket: 'test-packages', key });
      } finally {
        storage.deleteObject = deleteObject;
      }
      expect(await fixtures.prisma.packageObject.findMany({ where: { key } })).toEqual([expect.objectContaining({ state: 'deleting' })]);

      await service.app.get(PackageObjects).sweep(new Date(Date.now() + 1_000));

      expect(await exists(key)).toBe(false);
      expect(await fixtures.prisma.packageObject.count({ where: { key } })).toBe(0);
    });

    it('keeps a package whose ready record committed though its answer was lost, and records it once', async () => {
      const operations = service.app.get(OperationRepository);
      const markReady = operations.markReady.bind(operations);
      const answers: boolean[] = [];
      // markReady commits, and every time the connection drops before the answer, as a Postgres blink does: the
      // attempt tries again (finding its own package recorded), and must not disown it meanwhile.
      operations.markReady = async (...args) => {
        answers.push(await markReady(...args));
        throw Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
      };
      const job = await fixtures.job({ inputs: { 'a.tif': raster(64 * 1024) } });
      try {
        await put(job);
        await waitFor(async () => answers.length >= 4, 30_000, 'the ready record and its three retries');
      } finally {
        operations.markReady = markReady;
      }
      expect(answers).toEqual([true, true, true, true]);

      const operation = await waitFor(async () => {
        const found = await fixtures.prisma.downloadOperation.findFirst({ where: { jobId: job.jobId } });
        return found?.status === 'ready' ? found : undefined;
      }, 15_000, 'the operation to be ready');
      // Nothing deleted the package: not the attempt, nor the job's next delivery, which finds it ready.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(await exists(operation.archiveKey!)).toBe(true);
      expect(await fixtures.prisma.packageObject.count({ where: { key: operation.archiveKey! } })).toBe(0);
      const answer = await put(job);
      expect(answer).toMatchObject({ id: operation.id, status: 'ready' });
      expect((await download(answer.signed_url)).status).toBe(200);
    }, 60_000);

    it('keeps a complete package through a Postgres outage longer than a blink, and records it ready once Postgres is back, without building it again', async () => {
      const operations = service.app.get(OperationRepository);
      const markReady = operations.markReady.bind(operations);
      // Postgres away for the first four tries, about 8 s: the old patience (three retries) would have given up.
      let refused = 0;
      operations.markReady = async (...args) => {
        if (refused < 4) {
          refused++;
          throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
        }
        return markReady(...args);
      };
      const job = await fixtures.job({ inputs: { 'a.tif': raster(64 * 1024) } });
      try {
        const { id } = await put(job);
        const operation = await waitFor(async () => {
          const found = await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id } });
          return found.status === 'ready' ? found : undefined;
        }, 45_000, 'the operation to be ready');
        expect(refused).toBe(4);
        // The first attempt's package: not thrown away and built again by a second attempt.
        expect(operation.attempts).toBe(1);
        expect(operation.archiveKey).toMatch(/-1\.zip$/);
        expect(await exists(operation.archiveKey!)).toBe(true);
      } finally {
        operations.markReady = markReady;
      }
    }, 60_000);

    it('deletes a complete package at once when its operation is cancelled while its ready record waits for Postgres', async () => {
      const operations = service.app.get(OperationRepository);
      const markReady = operations.markReady.bind(operations);
      let postgresBack = false;
      let tries = 0;
      operations.markReady = async (...args) => {
        tries++;
        if (!postgresBack) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
        return markReady(...args);
      };
      const job = await fixtures.job({ inputs: { 'a.tif': raster(64 * 1024) } });
      try {
        const { id } = await put(job);
        await waitFor(async () => tries >= 1, 30_000, 'the package to be complete');
        const key = `packages/${job.workflowId}/${job.jobId}/${id}-1.zip`;
        expect(await exists(key)).toBe(true);

        await service.http.delete(downloadPath(job)).set('Authorization', job.apiKey).expect(200);
        postgresBack = true;

        // Not left for the sweep (PACKAGE_DELETE_GRACE_SECONDS): the attempt learns of the cancel and deletes it.
        await waitFor(async () => ((await exists(key)) ? undefined : true), 30_000, 'the package to be deleted');
        expect((await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id } })).status).toBe('cancelled');
      } finally {
        operations.markReady = markReady;
      }
    }, 60_000);

    it('prunes finished operations older than OPERATION_HISTORY_DAYS, never a live one', async () => {
      const job = await fixtures.job({ inputs: { 'a.tif': 'x' } });
      const longAgo = new Date(Date.now() - 91 * DAY_MS);
      const old = await fixtures.prisma.downloadOperation.create({ data: { workflowId: job.workflowId, jobId: job.jobId, status: 'failed', createdAt: longAgo } });
      const oldButLive = await fixtures.prisma.downloadOperation.create({ data: { workflowId: job.workflowId, jobId: job.jobId, createdAt: longAgo } });
      const recent = await fixtures.prisma.downloadOperation.create({ data: { workflowId: job.workflowId, jobId: job.jobId, status: 'expired' } });

      await service.app.get(RetentionService).sweep();

      const left = await fixtures.prisma.downloadOperation.findMany({ where: { jobId: job.jobId }, select: { id: true } });
      expect(left.map((row) => row.id).sort()).toEqual([oldButLive.id, recent.id].sort());
      expect(left.map((row) => row.id)).not.toContain(old.id);
    });

    it('prunes a backlog of old history larger than one batch in one sweep, webhook events and attempts with it', async () => {
      const job = await fixtures.job({ inputs: { 'a.tif': 'x' } });
      const longAgo = new Date(Date.now() - 91 * DAY_MS);
      // More than two batches of 500: a sweep used to take 500 rows, whatever the backlog.
      await fixtures.prisma.downloadOperation.createMany({
        data: Array.from({ length: 1_200 }, () => ({ workflowId: job.workflowId, jobId: job.jobId, status: 'failed' as const, createdAt: longAgo })),
      });
      const event = (createdAt: Date) => ({ id: randomUUID(), organisationId: job.organisationId, type: 'download.failed', operationId: randomUUID(), operation: {}, createdAt, dispatchedAt: createdAt });
      const oldEvents = Array.from({ length: 1_100 }, () => event(longAgo));
      const recentEvent = event(new Date());
      const retrying = event(longAgo);
      const retriedThenDelivered = event(longAgo);
      const attempt = (eventId: string, attemptedAt: Date, nextAttemptAt: Date | null = null) => ({
        eventId, eventType: 'download.failed', organisationId: job.organisationId, url: 'https://hooks.example.com/', attempt: 1, durationMs: 5, delivered: nextAttemptAt === null, attemptedAt, nextAttemptAt,
      });
      // In one transaction: a sweep (this block's service's own, scheduled) that saw an old event without its
      // pending retry would rightly prune it.
      await fixtures.prisma.$transaction([
        fixtures.prisma.webhookEvent.createMany({ data: [...oldEvents, recentEvent, retrying, retriedThenDelivered] }),
        fixtures.prisma.webhookDelivery.createMany({
          data: [
            ...oldEvents.map((old) => attempt(old.id, longAgo)),
            attempt(recentEvent.id, new Date()),
            attempt(retrying.id, longAgo, new Date(Date.now() + 60_000)),
            // Attempt 1 failed and named when attempt 2 was due; attempt 2 delivered it, long ago too.
            attempt(retriedThenDelivered.id, longAgo, new Date(longAgo.getTime() + 5_000)),
            { ...attempt(retriedThenDelivered.id, new Date(longAgo.getTime() + 5_000)), attempt: 2 },
          ],
        }),
      ]);

      await service.app.get(RetentionService).sweep();

      expect(await fixtures.prisma.downloadOperation.count({ where: { jobId: job.jobId } })).toBe(0);
      const events = await fixtures.prisma.webhookEvent.findMany({ where: { organisationId: job.organisationId }, select: { id: true } });
      expect(events.map((row) => row.id).sort()).toEqual([recentEvent.id, retrying.id].sort());
      const deliveries = await fixtures.prisma.webhookDelivery.findMany({ where: { organisationId: job.organisationId }, select: { eventId: true } });
      expect(deliveries.map((row) => row.eventId).sort()).toEqual([recentEvent.id, retrying.id].sort());
    });

    it('keeps failed jobs in Redis capped by count as well as by age', async () => {
      // Nothing to package: the job fails for good, and stays among the failed jobs.
      const job = await fixtures.job({});
      const { id } = await put(job);

      const options = await waitFor(
        () => inspectQueue(service.config.QUEUE_PREFIX, async (queue) => ((await queue.getJobState(id)) === 'failed' ? (await queue.getJob(id))?.opts : undefined)),
        15_000,
        'the job to fail in Redis',
      );

      expect(options.removeOnFail).toEqual({ age: 7 * 24 * 3600, count: 10_000 });
    });
  });
});
