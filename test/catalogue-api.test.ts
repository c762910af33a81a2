import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { download, Fixtures, inspectZip, sha256, startTestApp, uniqueId, uniqueQueuePrefix, type TestApp } from './support/harness.js';
import { startS3Proxy, waitFor } from './support/processes.js';
import { FairShare } from '../src/platform/queues/fair-share.js';

const TOKEN = 'catalogue-token-0123456789';
const raster = (bytes: number) => Buffer.concat([Buffer.from('II*\0'), randomBytes(bytes - 4)]);

function envelope(code: string, details: unknown = expect.any(Array)) {
  return { error: { code, message: expect.any(String), details } };
}

/**
 * The catalogue API, as the platform's workflow engine uses it on INTERNAL_PORT, and the task downloads it
 * makes possible: jobs with several sources per side across buckets, tasks, re-registrations that supersede
 * packages, and every refusal.
 */
describe('the catalogue API and task downloads', () => {
  let fixtures: Fixtures;
  let service: TestApp;
  let scratch: string;
  let owner: { organisationId: string; apiKey: string; keyId: string };

  beforeAll(async () => {
    fixtures = await Fixtures.create();
    scratch = await mkdtemp(path.join(tmpdir(), 'catalogue-'));
    service = await startTestApp('all', { INTERNAL_API_TOKEN: TOKEN, ASSET_BUCKETS: 'test-assets,test-assets-extra,test-packages', READY_CACHE_SECONDS: '5' });
    owner = await fixtures.organisationWithKey();
  });

  afterAll(async () => {
    await service.close();
    await fixtures.close();
    await rm(scratch, { recursive: true, force: true });
  });

  const internal = () => service.internal!.http;
  const authorised = <T extends { set(name: string, value: string): T }>(test: T) => test.set('Authorization', `Bearer ${TOKEN}`);
  const putWorkflow = (workflowId: string, organisationId = owner.organisationId) =>
    authorised(internal().put(`/internal/v0/workflows/${workflowId}`)).send({ organisation_id: organisationId });
  const putJob = (workflowId: string, jobId: string, body: object) => authorised(internal().put(`/internal/v0/workflows/${workflowId}/jobs/${jobId}`)).send(body);
  const publicPut = (urlPath: string, wait = 30) =>
    service.http.put(urlPath).set('Authorization', owner.apiKey).set('Prefer', `wait=${wait}`).expect(200).then((response) => response.body);

  async function zipOf(signedUrl: string, name: string) {
    const fetched = await download(signedUrl);
    const file = path.join(scratch, name);
    await writeFile(file, fetched.body);
    return { zip: inspectZip(file), disposition: fetched.headers.get('content-disposition') };
  }

  describe('its port and its token', () => {
    it('answers nothing on PORT: every catalogue route is 404 there, token or not', async () => {
      const response = await authorised(service.http.put(`/internal/v0/workflows/${uniqueId('wf')}`)).send({ organisation_id: owner.organisationId }).expect(404);
      expect(response.body).toEqual({ error: { code: 'NOT_FOUND', message: 'no such resource', details: [] } });
      await service.http.get('/internal/openapi.json').expect(404);
      // Express routes without case: the port check must too.
      await authorised(service.http.put(`/INTERNAL/v0/workflows/${uniqueId('wf')}`)).send({ organisation_id: owner.organisationId }).expect(404);
      await authorised(service.http.get('/Internal/v0/workflows/wf/jobs/j')).expect(404);
      await service.http.get('/Internal/openapi.json').expect(404);
    });

    it('serves only the catalogue on INTERNAL_PORT: the public routes are 404 there, to holders of the token', async () => {
      await authorised(internal().put('/v0/workflows/wf/jobs/job/download')).expect(404);
      await authorised(internal().put('/V0/workflows/wf/jobs/job/download')).expect(404);
      await authorised(internal().get('/openapi.json')).expect(404);
      // Without the token (an API key is not one), every path there is 401, whether it exists or not.
      await internal().put('/v0/workflows/wf/jobs/job/download').set('Authorization', owner.apiKey).expect(401);
      await internal().get('/openapi.json').expect(401);
    });

    it('answers 401 on INTERNAL_PORT to any path without the token, and 404 on an unknown one with it', async () => {
      const unknown = await internal().get('/internal/v0/anything').set('X-Request-Id', 'gw-probe-1').expect(401);
      // Refused before the request logger runs, and still traceable: the gateway's request id comes back.
      expect(unknown.headers['x-request-id']).toBe('gw-probe-1');
      const elsewhere = await internal().delete('/no/such/route').set('Authorization', `Bearer ${TOKEN}x`).expect(401);
      const known = await authorised(internal().get('/internal/v0/anything')).expect(404);

      expect(unknown.body).toEqual({ error: { code: 'UNAUTHENTICATED', message: 'the catalogue API needs Authorization: Bearer <INTERNAL_API_TOKEN>', details: [] } });
      expect(elsewhere.body).toEqual(envelope('UNAUTHENTICATED', []));
      expect(known.body).toEqual({ error: { code: 'NOT_FOUND', message: 'no such resource', details: [] } });
    });

    it('answers 401 without the token, with a wrong one, and always when no token is configured', async () => {
      const workflowId = uniqueId('wf');
      // Whatever the body: it is not read without the token (malformed, or over the 1 MiB limit).
      for (const body of ['{bad', JSON.stringify({ organisation_id: 'x'.repeat(2 * 1024 * 1024) })]) {
        const refused = await internal().put(`/internal/v0/workflows/${workflowId}`).set('Content-Type', 'application/json').send(body);
        expect({ status: refused.status, body: refused.body }).toEqual({ status: 401, body: envelope('UNAUTHENTICATED', []) });
      }
      expect((await internal().put(`/internal/v0/workflows/${workflowId}`).send({ organisation_id: owner.organisationId }).expect(401)).body).toEqual(envelope('UNAUTHENTICATED', []));
      await internal().put(`/internal/v0/workflows/${workflowId}`).set('Authorization', `Bearer ${TOKEN}x`).send({ organisation_id: owner.organisationId }).expect(401);
      await internal().put(`/internal/v0/workflows/${workflowId}`).set('Authorization', TOKEN).send({ organisation_id: owner.organisationId }).expect(401);
      const unset = await startTestApp('api', { QUEUE_PREFIX: uniqueQueuePrefix() });
      try {
        await unset.internal!.http.get(`/internal/v0/workflows/${workflowId}/jobs/j`).set('Authorization', `Bearer ${TOKEN}`).expect(401);
        // Unset: every path is 401, an unknown one too.
        for (const path of ['/internal/v0/anything', '/healthz', '/']) {
          const refused = await unset.internal!.http.get(path).set('Authorization', `Bearer ${TOKEN}`);
          expect({ path, status: refused.status, body: refused.body }).toEqual({ path, status: 401, body: envelope('UNAUTHENTICATED', []) });
        }
      } finally {
        await unset.close();
      }
      expect(await fixtures.prisma.workflow.count({ where: { id: workflowId } })).toBe(0);
    });

    it('takes any token of at least 16 characters: spaces and non-ASCII characters, sent as UTF-8', async () => {
      const token = 'a passphrase with spaces — ünïcödé';
      const spaced = await startTestApp('api', { INTERNAL_API_TOKEN: token, QUEUE_PREFIX: uniqueQueuePrefix() });
      try {
        const workflowId = uniqueId('wf');
        // Header values travel as bytes, here the token's UTF-8 (as curl sends it); fetch takes them as Latin-1 characters.
        const asSent = Buffer.from(`Bearer ${token}`, 'utf8').toString('latin1');
        const created = await fetch(`${spaced.internal!.baseUrl}/internal/v0/workflows/${workflowId}`, {
          method: 'PUT',
          headers: { Authorization: asSent, 'Content-Type': 'application/json' },
          body: JSON.stringify({ organisation_id: owner.organisationId }),
        });
        expect(created.status).toBe(200);
        await spaced.internal!.http.get(`/internal/v0/workflows/${workflowId}/jobs/j`).set('Authorization', 'Bearer a passphrase with spaces').expect(401);
        await spaced.internal!.http.get(`/internal/v0/workflows/${workflowId}/jobs/j`).set('Authorization', `Bearer ${TOKEN}`).expect(401);
      } finally {
        await spaced.close();
      }
    });

    it('describes itself at /internal/openapi.json, to holders of the token only, apart from the public document', async () => {
      const refused = await internal().get('/internal/openapi.json').expect(401);
      expect(refused.body).toEqual(envelope('UNAUTHENTICATED', []));
      await internal().get('/internal/openapi.json').set('Authorization', 'Bearer not-the-token-at-all').expect(401);
      const { body: own } = await authorised(internal().get('/internal/openapi.json')).expect(200);
      const { body: publicDocument } = await service.http.get('/openapi.json').expect(200);

      expect(Object.keys(own.paths).sort()).toEqual([
        '/internal/v0/organisations/{org_id}/webhooks',
        '/internal/v0/organisations/{org_id}/webhooks/{webhook_id}',
        '/internal/v0/workflows/{workflow_id}',
        '/internal/v0/workflows/{workflow_id}/jobs/{job_id}',
      ]);
      expect(Object.keys(own.paths['/internal/v0/workflows/{workflow_id}/jobs/{job_id}']).sort()).toEqual(['delete', 'get', 'put']);
      // A valid document: every parameter of a path is declared, and every operation says what it answers.
      for (const [route, operations] of Object.entries<Record<string, any>>(own.paths)) {
        const inPath = [...route.matchAll(/\{(\w+)\}/g)].map((match) => match[1]).sort();
        for (const [method, operation] of Object.entries<any>(operations)) {
          const declared = operation.parameters.filter((parameter: any) => parameter.in === 'path').map((parameter: any) => parameter.name).sort();
          expect(`${method} ${route}: ${declared.join(',')}`).toBe(`${method} ${route}: ${inPath.join(',')}`);
          expect(Object.keys(operation.responses).filter((status) => status.startsWith('2'))).toHaveLength(1);
        }
      }
      expect(own.components.securitySchemes['internal-token']).toMatchObject({ type: 'http', scheme: 'bearer' });
      expect(Object.keys(publicDocument.paths).filter((p) => p.startsWith('/internal'))).toEqual([]);
      expect(Object.keys(publicDocument.paths)).toEqual(expect.arrayContaining(['/v0/workflows/{workflow_id}/jobs/{job_id}/download', '/v0/workflows/{workflow_id}/jobs/{job_id}/tasks/{task_id}/download']));
    });
  });

  describe('registering', () => {
    it('two first registrations of one job at once: the job ends with the tasks of one of them, never both', async () => {
      const workflowId = uniqueId('wf');
      await putWorkflow(workflowId).expect(200);
      const body = (taskId: string) => ({ status: 'completed', inputs: [], outputs: [], tasks: [{ task_id: taskId, status: 'completed', inputs: [], outputs: [] }] });
      // Both registrations get as far as writing the new job, then wait: the workflow's row is held, which a
      // new job's foreign key must share. Released, they run as they would have on a busy database.
      let release = () => undefined as void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const holder = fixtures.prisma.$transaction(async (tx) => {
        await tx.$queryRaw`SELECT 1 FROM workflows WHERE id = ${workflowId} FOR UPDATE`;
        await released;
      }, { timeout: 30_000 });
      try {
        const registrations = ['first', 'second'].map((taskId) => putJob(workflowId, 'job', body(taskId)).then((answer) => answer));
        await waitFor(async () => {
          // Only these two: other test files share the database, and their waits must not count.
          const [{ waiting }] = await fixtures.prisma.$queryRaw<Array<{ waiting: number }>>`
            SELECT count(*)::int AS waiting FROM pg_stat_activity
             WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0
               AND (query LIKE '%pg_advisory_xact_lock%' OR query LIKE 'INSERT INTO "public"."jobs"%')`;
          return waiting >= 2;
        }, 10_000, 'both registrations to be under way');
        release();
        await holder;

        const answers = await Promise.all(registrations);
        expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
        const last = answers.map((answer) => answer.body.tasks.map((task: { task_id: string }) => task.task_id));
        const stored = await fixtures.prisma.task.findMany({ where: { workflowId, jobId: 'job' } });
        expect([['first'], ['second']]).toContainEqual(stored.map((task) => task.id));
        expect(last).toContainEqual(stored.map((task) => task.id));
      } finally {
        release();
        await holder.catch(() => undefined);
      }
    });

    it('registers a job of 10,000 tasks, and again with every task changed; refuses 10,001 naming tasks', async () => {
      const workflowId = uniqueId('wf');
      await putWorkflow(workflowId).expect(200);
      const job = (count: number, status: string) => ({
        status: 'completed', inputs: [], outputs: [],
        tasks: Array.from({ length: count }, (_, i) => ({ task_id: `tile-${i}`, status, inputs: [], outputs: [] })),
      });
      const first = await putJob(workflowId, 'tiles', job(10_000, 'completed')).expect(200);
      const changed = await putJob(workflowId, 'tiles', job(10_000, 'failed')).expect(200);
      const tooMany = await putJob(workflowId, 'more', job(10_001, 'completed')).expect(400);

      expect(first.body.tasks).toHaveLength(10_000);
      expect(await fixtures.prisma.task.count({ where: { workflowId, jobId: 'tiles', status: 'failed' } })).toBe(10_000);
      expect(changed.body.tasks.every((task: { status: string }) => task.status === 'failed')).toBe(true);
      expect(tooMany.body).toEqual(envelope('INVALID_REQUEST', [{ field: 'tasks', message: 'tasks must list at most 10000 tasks' }]));
    }, 120_000);

    it('creates a workflow once, idempotently, and refuses it to another organisation with 409', async () => {
      const workflowId = uniqueId('wf');
      const first = await putWorkflow(workflowId).expect(200);
      const again = await putWorkflow(workflowId).expect(200);
      const other = await fixtures.organisationWithKey();

      const conflict = await putWorkflow(workflowId, other.organisationId).expect(409);

      expect(first.body).toMatchObject({ workflow_id: workflowId, organisation_id: owner.organisationId });
      expect(again.body).toEqual(first.body);
      expect(conflict.body).toEqual(envelope('CONFLICT', []));
    });

    it('takes the organisation id in upper case as the same organisation, creating and then answering the workflow', async () => {
      const workflowId = uniqueId('wf');
      const shouted = owner.organisationId.toUpperCase();
      const created = await putWorkflow(workflowId, shouted).expect(200);
      const again = await putWorkflow(workflowId, shouted).expect(200);
      const lower = await putWorkflow(workflowId).expect(200);

      expect(created.body).toMatchObject({ workflow_id: workflowId, organisation_id: owner.organisationId });
      expect(again.body).toEqual(created.body);
      expect(lower.body).toEqual(created.body);
    });

    it('creates a new workflow once when its registrations race, answering each of them 200', async () => {
      const workflowId = uniqueId('wf');
      const answers = await Promise.all(Array.from({ length: 12 }, () => putWorkflow(workflowId)));

      expect(answers.map((answer) => answer.status)).toEqual(Array(12).fill(200));
      expect(new Set(answers.map((answer) => JSON.stringify(answer.body))).size).toBe(1);
      expect(await fixtures.prisma.workflow.count({ where: { id: workflowId } })).toBe(1);
    });

    it('packages a job of three sources per side across two buckets, each entry named as its source says', async () => {
      const workflowId = uniqueId('wf');
      const base = uniqueId('run');
      await putWorkflow(workflowId).expect(200);
      const files: Record<string, [string, string]> = {
        scene1: ['test-assets', `${base}/scenes/B04.tif`],
        scene2: ['test-assets', `${base}/scenes/sub/B08.tif`],
        dem: ['test-assets-extra', `${base}/aux/dem.tif`],
        folder: ['test-assets', `${base}/params/run.json`],
        product: ['test-assets-extra', `${base}/products/ndvi.tif`],
        stats: ['test-assets', `${base}/report/stats.csv`],
        clash: ['test-assets', `${base}/other/ndvi.tif`],
      };
      const bodies: Record<string, Buffer> = {};
      for (const [name, [bucket, key]] of Object.entries(files)) {
        bodies[name] = raster(4096 + name.length);
        await fixtures.storage.putObject(bucket, key, bodies[name], 'application/octet-stream');
      }
      // An empty object beside the folder of the same name, as s3fs and some consoles leave: its marker.
      await fixtures.storage.putObject('test-assets', `${base}/params`, Buffer.alloc(0), 'application/x-directory');
      const registered = await putJob(workflowId, 'job', {
        status: 'completed',
        inputs: [`s3://test-assets/${base}/scenes/`, `s3://test-assets-extra/${base}/aux/dem.tif`, `s3://test-assets/${base}/params`],
        outputs: [`s3://test-assets-extra/${base}/products/`, `s3://test-assets/${base}/report/stats.csv`, `s3://test-assets/${base}/other/ndvi.tif`],
      }).expect(200);
      expect(registered.body).toMatchObject({ workflow_id: workflowId, job_id: 'job', organisation_id: owner.organisationId, status: 'completed', tasks: [] });

      const ready = await publicPut(`/v0/workflows/${workflowId}/jobs/job/download`);

      expect(ready.status).toBe('ready');
      const { zip } = await zipOf(ready.signed_url, 'sources.zip');
      expect(zip.testzip).toBeNull();
      const byName = Object.fromEntries(zip.entries.map((entry) => [entry.name, entry.sha256]));
      expect(Object.keys(byName)).toEqual([
        'inputs/B04.tif', 'inputs/sub/B08.tif', 'inputs/dem.tif', 'inputs/run.json',
        'outputs/ndvi.tif', 'outputs/stats.csv', 'outputs/ndvi~2.tif', 'manifest.json',
      ]);
      expect(byName['inputs/sub/B08.tif']).toBe(sha256(bodies.scene2));
      expect(byName['inputs/dem.tif']).toBe(sha256(bodies.dem));
      expect(byName['inputs/run.json']).toBe(sha256(bodies.folder));
      expect(byName['outputs/ndvi.tif']).toBe(sha256(bodies.product));
      expect(byName['outputs/ndvi~2.tif']).toBe(sha256(bodies.clash));
    });

    it('is idempotent: the same registration twice changes nothing and keeps the package', async () => {
      const workflowId = uniqueId('wf');
      await putWorkflow(workflowId).expect(200);
      await fixtures.storage.putObject('test-assets', `${workflowId}/in/a.tif`, raster(2048), 'image/tiff');
      const body = { status: 'completed', inputs: [`s3://test-assets/${workflowId}/in/`], outputs: [], finished_at: '2026-11-30T10:00:00.000Z' };
      const first = await putJob(workflowId, 'job', body).expect(200);
      const ready = await publicPut(`/v0/workflows/${workflowId}/jobs/job/download`);

      const second = await putJob(workflowId, 'job', body).expect(200);

      expect(second.body).toEqual(first.body);
      expect(second.body.finished_at).toBe('2026-11-30T10:00:00.000Z');
      expect((await publicPut(`/v0/workflows/${workflowId}/jobs/job/download`, 0)).id).toBe(ready.id);
    });

    it('supersedes the ready package of a job registered anew with a new output: its object goes, the next PUT has the new file', async () => {
      const workflowId = uniqueId('wf');
      await putWorkflow(workflowId).expect(200);
      await fixtures.storage.putObject('test-assets', `${workflowId}/in/a.tif`, raster(2048), 'image/tiff');
      const body = { status: 'completed', inputs: [`s3://test-assets/${workflowId}/in/`], outputs: [] as string[] };
      await putJob(workflowId, 'job', body).expect(200);
      const old = await publicPut(`/v0/workflows/${workflowId}/jobs/job/download`);
      const oldOperation = await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: old.id } });
      await fixtures.storage.putObject('test-assets', `${workflowId}/out/new.tif`, raster(1024), 'image/tiff');

      await putJob(workflowId, 'job', { ...body, outputs: [`s3://test-assets/${workflowId}/out/new.tif`] }).expect(200);

      expect((await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: old.id } })).status).toBe('expired');
      await expect(fixtures.storage.client.send(new HeadObjectCommand({ Bucket: 'test-packages', Key: oldOperation.archiveKey! }))).rejects.toMatchObject({ name: 'NotFound' });
      expect((await download(old.signed_url)).status).toBe(404);
      const fresh = await publicPut(`/v0/workflows/${workflowId}/jobs/job/download`);
      expect(fresh.id).not.toBe(old.id);
      const { zip } = await zipOf(fresh.signed_url, 'anew.zip');
      expect(zip.entries.map((entry) => entry.name)).toEqual(['inputs/a.tif', 'outputs/new.tif', 'manifest.json']);
    });

    it('supersedes the ready package of a job registered anew with a task added; the same registration again changes nothing', async () => {
      const workflowId = uniqueId('wf');
      await putWorkflow(workflowId).expect(200);
      await fixtures.storage.putObject('test-assets', `${workflowId}/in/a.tif`, raster(2048), 'image/tiff');
      const task = (taskId: string) => ({ task_id: taskId, status: 'completed', inputs: [`s3://test-assets/${workflowId}/in/`], outputs: [] });
      const body = { status: 'completed', inputs: [`s3://test-assets/${workflowId}/in/`], outputs: [], finished_at: '2026-11-30T10:00:00.000Z' };
      const first = await putJob(workflowId, 'job', { ...body, tasks: [task('a')] }).expect(200);
      const old = await publicPut(`/v0/workflows/${workflowId}/jobs/job/download`);
      expect(old.status).toBe('ready');
      const oldOperation = await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: old.id } });

      const added = await putJob(workflowId, 'job', { ...body, tasks: [task('a'), task('b')] }).expect(200);

      expect(added.body.tasks.map((t: { task_id: string }) => t.task_id)).toEqual(['a', 'b']);
      expect(new Date(added.body.updated_at).getTime()).toBeGreaterThan(new Date(first.body.updated_at).getTime());
      expect((await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: old.id } })).status).toBe('expired');
      await expect(fixtures.storage.client.send(new HeadObjectCommand({ Bucket: 'test-packages', Key: oldOperation.archiveKey! }))).rejects.toMatchObject({ name: 'NotFound' });
      expect((await download(old.signed_url)).status).toBe(404);
      const fresh = await publicPut(`/v0/workflows/${workflowId}/jobs/job/download`);
      expect(fresh).toMatchObject({ status: 'ready' });
      expect(fresh.id).not.toBe(old.id);

      // The same body again is no change: the job's row and its package stay as they are.
      const again = await putJob(workflowId, 'job', { ...body, tasks: [task('a'), task('b')] }).expect(200);
      expect(again.body).toEqual(added.body);
      expect((await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: fresh.id } })).status).toBe('ready');
      expect((await publicPut(`/v0/workflows/${workflowId}/jobs/job/download`, 0)).id).toBe(fresh.id);
    });

    /**
     * A held answer, which only the catalogue's change can end before its wait (300 s) is over. 60 s is a
     * deadline for a request the change never woke, far from both the wake-up and the wait, not a speed.
     */
    async function wokenByTheChange<T>(answer: Promise<T>, what: string): Promise<T> {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} was still held 60 s after the change`)), 60_000);
      });
      try {
        return await Promise.race([answer, deadline]);
      } finally {
        clearTimeout(timer);
      }
    }

    it('answers a request held on a pending operation (Prefer: wait) as soon as its job is registered anew, or deleted', async () => {
      // No worker on this queue: the operations stay pending, and only the catalogue's change can end the wait.
      const api = await startTestApp('api', { INTERNAL_API_TOKEN: TOKEN, QUEUE_PREFIX: uniqueQueuePrefix(), PREFER_WAIT_MAX_SECONDS: '300' });
      try {
        const workflowId = uniqueId('wf');
        const jobPath = `/internal/v0/workflows/${workflowId}/jobs/job`;
        await authorised(api.internal!.http.put(`/internal/v0/workflows/${workflowId}`)).send({ organisation_id: owner.organisationId }).expect(200);
        const body = { status: 'completed', inputs: [`s3://test-assets/${workflowId}/in/`], outputs: [] as string[] };
        await authorised(api.internal!.http.put(jobPath)).send(body).expect(200);
        const held = () => {
          const answer = api.http.put(`/v0/workflows/${workflowId}/jobs/job/download`).set('Authorization', owner.apiKey).set('Prefer', 'wait=300').then((response) => response);
          return { answer, pending: waitFor(() => fixtures.prisma.downloadOperation.findFirst({ where: { workflowId, status: 'pending' } }).then((row) => row ?? undefined), 10_000, 'a pending operation') };
        };

        const first = held();
        const pending = await first.pending;
        await authorised(api.internal!.http.put(jobPath)).send({ ...body, outputs: [`s3://test-assets/${workflowId}/out/`] }).expect(200);
        // Woken by the change, not by the end of its 300 s: the operation it held is expired, as GET says too.
        const superseded = await wokenByTheChange(first.answer, 'the request held on the superseded operation');
        expect(superseded.status).toBe(200);
        expect(superseded.body).toMatchObject({ id: pending.id, status: 'expired', signed_url: '' });

        const second = held();
        await second.pending;
        await authorised(api.internal!.http.delete(jobPath)).expect(200);
        const removed = await wokenByTheChange(second.answer, 'the request held on the deleted job');
        expect(removed.status).toBe(404);
        expect(removed.body).toEqual(envelope('NOT_FOUND', []));
      } finally {
        await api.close();
      }
    }, 120_000);

    it("drops a superseded operation's build that waits in line, rather than starting it only for it to be skipped", async () => {
      // One worker slot, held by another build whose source reads wait: the superseded operation waits in line.
      let release = () => undefined as void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const s3 = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), { hold: (method, url) => (method === 'GET' && url.includes('/busy/') ? held : undefined) });
      const queuePrefix = uniqueQueuePrefix();
      const settings = { INTERNAL_API_TOKEN: TOKEN, QUEUE_PREFIX: queuePrefix, S3_ENDPOINT: `http://127.0.0.1:${s3.port}`, WORKER_CONCURRENCY: '1' };
      const api = await startTestApp('api', settings);
      const worker = await startTestApp('worker', settings);
      try {
        const workflowId = uniqueId('wf');
        await authorised(api.internal!.http.put(`/internal/v0/workflows/${workflowId}`)).send({ organisation_id: owner.organisationId }).expect(200);
        await fixtures.storage.putObject('test-assets', `${workflowId}/busy/a.tif`, raster(1024), 'image/tiff');
        const register = (jobId: string, inputs: string[]) => authorised(api.internal!.http.put(`/internal/v0/workflows/${workflowId}/jobs/${jobId}`)).send({ status: 'completed', inputs, outputs: [] }).expect(200);
        await register('busy', [`s3://test-assets/${workflowId}/busy/`]);
        await register('waiting', [`s3://test-assets/${workflowId}/in/`]);
        const putJob = (jobId: string) => api.http.put(`/v0/workflows/${workflowId}/jobs/${jobId}/download`).set('Authorization', owner.apiKey).expect(200);
        await putJob('busy');
        await waitFor(async () => s3.requests.some(({ url }) => url.includes('/busy/a.tif')), 30_000, 'the busy build to be reading');
        const { body: waiting } = await putJob('waiting');
        const fair = api.app.get(FairShare);
        expect(await fair.stateOf(waiting.id)).toBe('queued');

        await register('waiting', [`s3://test-assets/${workflowId}/other/`]);

        await waitFor(async () => ((await fair.stateOf(waiting.id)) === 'unknown' ? true : undefined), 10_000, 'the superseded build to leave the line');
        release();
        await waitFor(async () => (await fixtures.prisma.downloadOperation.findFirstOrThrow({ where: { workflowId, jobId: 'busy' } })).status === 'ready', 30_000, 'the busy build');
        // It was never started.
        expect((await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: waiting.id } })).attempts).toBe(0);
      } finally {
        release();
        await worker.close();
        await api.close();
        await s3.close();
      }
    }, 90_000);

    it('reads a job back with its tasks, and deletes it with its tasks, operations and packages', async () => {
      const workflowId = uniqueId('wf');
      await putWorkflow(workflowId).expect(200);
      await fixtures.storage.putObject('test-assets', `${workflowId}/t1/a.tif`, raster(1024), 'image/tiff');
      await putJob(workflowId, 'job', {
        status: 'completed',
        inputs: [],
        outputs: [],
        tasks: [{ task_id: 't1', status: 'completed', inputs: [`s3://test-assets/${workflowId}/t1/`], outputs: [] }],
      }).expect(200);
      const ready = await publicPut(`/v0/workflows/${workflowId}/jobs/job/tasks/t1/download`);
      const archiveKey = (await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: ready.id } })).archiveKey!;

      const { body: read } = await authorised(internal().get(`/internal/v0/workflows/${workflowId}/jobs/job`)).expect(200);
      expect(read.tasks).toEqual([expect.objectContaining({ task_id: 't1', status: 'completed', inputs: [`s3://test-assets/${workflowId}/t1/`], outputs: [] })]);

      const { body: deleted } = await authorised(internal().delete(`/internal/v0/workflows/${workflowId}/jobs/job`)).expect(200);

      expect(deleted).toEqual({ workflow_id: workflowId, job_id: 'job', deleted: true });
      await authorised(internal().get(`/internal/v0/workflows/${workflowId}/jobs/job`)).expect(404);
      expect(await fixtures.prisma.task.count({ where: { workflowId } })).toBe(0);
      expect(await fixtures.prisma.downloadOperation.count({ where: { workflowId } })).toBe(0);
      await expect(fixtures.storage.client.send(new HeadObjectCommand({ Bucket: 'test-packages', Key: archiveKey }))).rejects.toMatchObject({ name: 'NotFound' });
      await authorised(internal().delete(`/internal/v0/workflows/${workflowId}/jobs/job`)).expect(404);
    });
  });

  describe('task downloads', () => {
    /** Job "job" with task tile-a finished (inputs and outputs) and task tile-b still running. */
    function registerJobWithTasks(workflowId: string, jobStatus: 'running' | 'completed') {
      return putJob(workflowId, 'job', {
        status: jobStatus,
        inputs: [`s3://test-assets/${workflowId}/job/in/`],
        outputs: [],
        tasks: [
          { task_id: 'tile-a', status: 'completed', inputs: [`s3://test-assets/${workflowId}/tiles/a/in/`], outputs: [`s3://test-assets/${workflowId}/tiles/a/out/`] },
          { task_id: 'tile-b', status: 'running', inputs: [`s3://test-assets/${workflowId}/tiles/b/in/`], outputs: [] },
        ],
      }).expect(200);
    }

    async function jobWithTasks() {
      const workflowId = uniqueId('wf');
      await putWorkflow(workflowId).expect(200);
      const put = (key: string, body: Buffer) => fixtures.storage.putObject('test-assets', `${workflowId}/${key}`, body, 'image/tiff');
      await put('job/in/all.tif', raster(2048));
      await put('tiles/a/in/a.tif', raster(1024));
      await put('tiles/a/out/a-ndvi.tif', raster(1024));
      await put('tiles/b/in/b.tif', raster(1024));
      await registerJobWithTasks(workflowId, 'running');
      return workflowId;
    }

    it("packages one finished task on its own while its job still runs, and the job once it has finished: each with its own files and name", async () => {
      const workflowId = await jobWithTasks();

      const task = await publicPut(`/v0/workflows/${workflowId}/jobs/job/tasks/tile-a/download`);
      const jobStillRunning = await service.http.put(`/v0/workflows/${workflowId}/jobs/job/download`).set('Authorization', owner.apiKey).expect(409);
      await registerJobWithTasks(workflowId, 'completed');
      const job = await publicPut(`/v0/workflows/${workflowId}/jobs/job/download`);

      expect(jobStillRunning.body).toEqual(envelope('JOB_NOT_FINISHED', []));
      expect(task).toMatchObject({ status: 'ready', workflowId, job_id: 'job', task_id: 'tile-a' });
      expect(job.task_id).toBeUndefined();
      const taskZip = await zipOf(task.signed_url, 'task.zip');
      const jobZip = await zipOf(job.signed_url, 'job.zip');
      expect(taskZip.zip.entries.map((entry) => entry.name)).toEqual(['inputs/a.tif', 'outputs/a-ndvi.tif', 'manifest.json']);
      expect(jobZip.zip.entries.map((entry) => entry.name)).toEqual(['inputs/all.tif', 'manifest.json']);
      expect(taskZip.disposition).toContain(`${workflowId}_job_tile-a.zip`);
      expect(jobZip.disposition).toContain(`${workflowId}_job.zip`);
      const manifest = JSON.parse(execFileSync('unzip', ['-p', path.join(scratch, 'task.zip'), 'manifest.json']).toString());
      expect(manifest).toMatchObject({ workflow_id: workflowId, job_id: 'job', task_id: 'tile-a', operation_id: task.id });
      const taskOperation = await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: task.id } });
      expect(taskOperation).toMatchObject({ taskId: 'tile-a', status: 'ready' });
    });

    it('answers 404 for an unknown task and 409 JOB_NOT_FINISHED naming the task for a running one, as the job endpoint does, recording nothing', async () => {
      const workflowId = await jobWithTasks();

      const unknown = await service.http.put(`/v0/workflows/${workflowId}/jobs/job/tasks/nope/download`).set('Authorization', owner.apiKey).expect(404);
      const running = await service.http.put(`/v0/workflows/${workflowId}/jobs/job/tasks/tile-b/download`).set('Authorization', owner.apiKey).expect(409);
      const badId = await service.http.put(`/v0/workflows/${workflowId}/jobs/job/tasks/bad.id/download`).set('Authorization', owner.apiKey).expect(400);

      expect(unknown.body).toEqual(envelope('NOT_FOUND', []));
      expect(running.body).toEqual({ error: { code: 'JOB_NOT_FINISHED', message: 'task tile-b of job job is running; it can be downloaded once it has finished', details: [] } });
      expect(badId.body).toEqual(envelope('INVALID_PARAMETER', [{ field: 'task_id', message: expect.stringContaining('task_id must be') }]));
      expect(await fixtures.prisma.downloadOperation.count({ where: { workflowId } })).toBe(0);
    });

    it('turns 100 racing task PUTs on two API processes into one operation', async () => {
      const workflowId = await jobWithTasks();
      const second = await startTestApp('api', { QUEUE_PREFIX: service.config.QUEUE_PREFIX, ASSET_BUCKETS: 'test-assets,test-assets-extra' });
      try {
        const servers = [service.server, second.server];
        const responses = await Promise.all(
          Array.from({ length: 100 }, (_, i) => request(servers[i % 2]).put(`/v0/workflows/${workflowId}/jobs/job/tasks/tile-a/download`).set('Authorization', owner.apiKey)),
        );

        expect(responses.map((response) => response.status)).toEqual(Array(100).fill(200));
        expect(new Set(responses.map((response) => response.body.id)).size).toBe(1);
        expect(await fixtures.prisma.downloadOperation.count({ where: { workflowId, taskId: 'tile-a' } })).toBe(1);
      } finally {
        await second.close();
      }
    });
  });

  describe('refusals: the envelope, a field per detail, and nothing written', () => {
    let workflowId: string;

    beforeAll(async () => {
      workflowId = uniqueId('wf');
      await putWorkflow(workflowId).expect(200);
    });

    const valid = () => ({ status: 'completed', inputs: [`s3://test-assets/${workflowId}/in/`], outputs: [] as string[] });
    const refused = async (response: { body: unknown }, code: string, details: unknown) => {
      expect(response.body).toEqual(envelope(code, details));
      expect(await fixtures.prisma.job.count({ where: { workflowId } })).toBe(0);
    };

    it('malformed JSON: 400 INVALID_REQUEST', async () => {
      const response = await authorised(internal().put(`/internal/v0/workflows/${workflowId}/jobs/j`)).set('Content-Type', 'application/json').send('{"status": "completed",').expect(400);
      await refused(response, 'INVALID_REQUEST', []);
    });

    it('unknown fields and wrong types: 400 INVALID_REQUEST naming each field', async () => {
      const response = await putJob(workflowId, 'j', { ...valid(), status: 'done', inputs: 's3://test-assets/x/', colour: 'red', tasks: [{ task_id: 't', status: 'completed', inputs: [], outputs: [7] }] }).expect(400);
      await refused(response, 'INVALID_REQUEST', expect.arrayContaining([
        { field: 'colour', message: 'colour is not a known field' },
        { field: 'status', message: expect.stringContaining('status must be one of') },
        { field: 'inputs', message: 'inputs must be an array of S3 URIs' },
        { field: 'tasks[0].outputs', message: 'outputs must be an array of S3 URIs' },
      ]));
    });

    it('more than 10,000 sources on a side: 400 naming the side', async () => {
      const response = await putJob(workflowId, 'j', { ...valid(), outputs: Array.from({ length: 10_001 }, (_, i) => `s3://test-assets/${workflowId}/o/${i}.tif`) }).expect(400);
      await refused(response, 'INVALID_REQUEST', [{ field: 'outputs', message: 'outputs must list at most 10000 sources' }]);
    });

    it('a body over 1 MiB: 413 PAYLOAD_TOO_LARGE', async () => {
      const response = await putJob(workflowId, 'j', { ...valid(), outputs: Array.from({ length: 9_000 }, (_, i) => `s3://test-assets/${'x'.repeat(120)}/${i}.tif`) }).expect(413);
      await refused(response, 'PAYLOAD_TOO_LARGE', []);
    });

    it("sources outside ASSET_BUCKETS or not S3 URIs: 400 INVALID_SOURCE naming each", async () => {
      const response = await putJob(workflowId, 'j', {
        ...valid(),
        inputs: ['s3://elsewhere/x/', 'https://example.com/a.tif'],
        tasks: [{ task_id: 't', status: 'completed', inputs: ['s3://BAD_BUCKET/x'], outputs: [] }],
      }).expect(400);
      await refused(response, 'INVALID_SOURCE', [
        { field: 'inputs[0]', message: 'bucket "elsewhere" is not one of ASSET_BUCKETS (test-assets, test-assets-extra, test-packages)' },
        { field: 'inputs[1]', message: 'must be an S3 URI: s3://bucket/prefix/ or s3://bucket/key' },
        { field: 'tasks[0].inputs[0]', message: '"BAD_BUCKET" is not a valid bucket name (3 to 63 of a-z 0-9 . -)' },
      ]);
    });

    it("sources under the packages' own prefix, however spelt: 400 INVALID_SOURCE, so a job never packages a package", async () => {
      const response = await putJob(workflowId, 'j', {
        ...valid(),
        inputs: ['s3://test-packages/packages/', 's3://test-packages/packages', 's3://test-packages/x/../packages/wf/job/op-1.zip', 's3://test-packages/./packages/wf/'],
        outputs: ['s3://test-assets//a.tif', 's3://test-assets/a/./b.tif', 's3://test-packages/elsewhere/'],
      }).expect(400);
      const underPackages = "must not be under the packages' own prefix s3://test-packages/packages/";
      const ambiguous = 'must not contain empty, "." or ".." path segments';
      await refused(response, 'INVALID_SOURCE', [
        { field: 'inputs[0]', message: underPackages },
        { field: 'inputs[1]', message: underPackages },
        { field: 'inputs[2]', message: ambiguous },
        { field: 'inputs[3]', message: ambiguous },
        { field: 'outputs[0]', message: ambiguous },
        { field: 'outputs[1]', message: ambiguous },
      ]);
    });

    it('an organisation that does not exist, a malformed one, and an unknown workflow', async () => {
      const unknownOrg = await putWorkflow(uniqueId('wf'), '00000000-0000-4000-8000-000000000000').expect(400);
      const malformed = await putWorkflow(uniqueId('wf'), 'acme').expect(400);
      const noWorkflow = await putJob(uniqueId('wf'), 'j', valid()).expect(404);

      expect(unknownOrg.body).toEqual(envelope('INVALID_REQUEST', [{ field: 'organisation_id', message: 'no organisation with id 00000000-0000-4000-8000-000000000000' }]));
      expect(malformed.body).toEqual(envelope('INVALID_REQUEST', [{ field: 'organisation_id', message: 'organisation_id must be a UUID' }]));
      expect(noWorkflow.body).toEqual(envelope('NOT_FOUND', []));
    });

    it('finished_at that is not an RFC 3339 date-time, or a day that does not exist (year 0 included), is refused naming it; null means absent', async () => {
      // ISO 8601 week and ordinal dates, its basic format, an hour-only offset: forms Date cannot read.
      for (const finishedAt of ['2026-W48-7', '2026-333', '20261129', '2026-11-29T12Z', '2026-11-29T12:00:00+14', '2026-02-30T10:00:00Z', '0000-01-01T00:00:00Z', 'yesterday', 20261129,
        // A date that exists, moved out of the years 1 to 9999 by its offset.
        '0001-01-01T00:00:00+00:01', '9999-12-31T23:59:59-23:59']) {
        const answer = await putJob(workflowId, 'when', { ...valid(), finished_at: finishedAt }).expect(400);
        await refused(answer, 'INVALID_REQUEST', [{ field: 'finished_at', message: 'finished_at must be an RFC 3339 date-time, such as 2026-11-30T10:00:00Z' }]);
      }
      // Accepted ones go to a workflow of their own: every refusal above is checked to have written nothing.
      const accepting = uniqueId('wf');
      await putWorkflow(accepting).expect(200);
      const offset = await putJob(accepting, 'when', { ...valid(), finished_at: '2026-11-30T12:00:00+02:00' }).expect(200);
      expect(offset.body.finished_at).toBe('2026-11-30T10:00:00.000Z');
      const earliest = await putJob(accepting, 'earliest', { ...valid(), finished_at: '0001-01-01T00:00:00-00:01' }).expect(200);
      expect(earliest.body.finished_at).toBe('0001-01-01T00:01:00.000Z');
      const unset = await putJob(accepting, 'unset', { ...valid(), finished_at: null }).expect(200);
      expect(Math.abs(Date.now() - Date.parse(unset.body.finished_at))).toBeLessThan(60_000);
      const running = await putJob(accepting, 'running', { ...valid(), status: 'running', finished_at: null }).expect(200);
      expect(running.body.finished_at).toBeNull();
    });

    it('finished_at on a running job, a task listed twice, and a malformed path parameter', async () => {
      const running = await putJob(workflowId, 'j', { ...valid(), status: 'running', finished_at: '2026-11-30T10:00:00Z', tasks: [
        { task_id: 't', status: 'completed', inputs: [], outputs: [] },
        { task_id: 't', status: 'completed', inputs: [], outputs: [] },
      ] }).expect(400);
      const badPath = await putJob(workflowId, 'bad.id', valid()).expect(400);
      const undecodable = await putJob(workflowId, '%zz', valid()).expect(400);
      const empty = await authorised(internal().get(`/internal/v0/workflows//jobs/j`)).expect(400);

      await refused(running, 'INVALID_REQUEST', [
        { field: 'finished_at', message: 'must be absent while the job is queued or running' },
        { field: 'tasks[1].task_id', message: 'task t is listed twice' },
      ]);
      expect(badPath.body).toEqual(envelope('INVALID_REQUEST', [{ field: 'job_id', message: expect.stringContaining('job_id must be') }]));
      expect(undecodable.body).toEqual(envelope('INVALID_REQUEST', [{ field: 'job_id', message: 'job_id is not valid percent-encoding' }]));
      expect(empty.body).toEqual(envelope('INVALID_REQUEST', [{ field: 'workflow_id', message: 'workflow_id must not be empty' }]));
    });
  });
});
