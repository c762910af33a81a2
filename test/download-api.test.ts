import { Redis } from 'ioredis';
import request from 'supertest';
import { FairShare } from '../src/platform/queues/fair-share.js';
import { PackageQueue } from '../src/platform/queues/package-queue.js';
import { waitFor } from './support/processes.js';
import { downloadPath, Fixtures, inspectQueue, onDatabaseOfItsOwn, startTestApp, uniqueQueuePrefix, type SeededJob, type TestApp } from './support/harness.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function envelope(code: string, message: unknown = expect.any(String), details: unknown = []) {
  return { error: { code, message, details } };
}

describe('PUT and GET /v0/workflows/{workflow_id}/jobs/{job_id}/download', () => {
  let fixtures: Fixtures;
  let api: TestApp;
  let job: SeededJob;
  const queuePrefix = uniqueQueuePrefix();

  beforeAll(async () => {
    fixtures = await Fixtures.create();
    // The API alone: operations stay pending, so what the endpoint records and queues can be inspected.
    api = await startTestApp('api', { QUEUE_PREFIX: queuePrefix });
  });

  beforeEach(async () => {
    job = await fixtures.job({ inputs: { 'a.tif': 'raster' } });
  });

  afterAll(async () => {
    await api.close();
    await fixtures.close();
  });

  const put = (target: SeededJob, key = target.apiKey) => api.http.put(downloadPath(target)).set('Authorization', key);
  /** The operations waiting in an organisation's line for a build slot. */
  const inLine = async (organisationId: string, prefix = queuePrefix) => {
    const redis = new Redis(process.env.REDIS_URL!);
    try {
      return await redis.lrange(`${prefix}:fair:q:${organisationId}`, 0, -1);
    } finally {
      redis.disconnect();
    }
  };

  describe('the 200 answer', () => {
    it('records a pending operation and answers the four upstream fields, signed_url empty, with Retry-After', async () => {
      const response = await put(job).expect(200);

      expect(Object.keys(response.body).slice(0, 4)).toEqual(['id', 'status', 'signed_url', 'workflowId']);
      expect(response.body).toMatchObject({ status: 'pending', signed_url: '', workflowId: job.workflowId, job_id: job.jobId, progress: 0, size_bytes: null, sha256: null, expires_at: null });
      expect(response.body.id).toMatch(UUID);
      expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
      const rows = await fixtures.prisma.downloadOperation.findMany({ where: { workflowId: job.workflowId, jobId: job.jobId } });
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ id: response.body.id, status: 'pending', requestedBy: job.keyId });
    });

    it('records when a key was last used, writing at most once a minute', async () => {
      const owner = await fixtures.organisationWithKey();
      const ownJob = await fixtures.job({ owner });
      await put(ownJob).expect(200);
      const first = await waitFor(async () => (await fixtures.prisma.apiKey.findUniqueOrThrow({ where: { id: owner.keyId } })).lastUsedAt, 5_000, 'last_used_at');

      await put(ownJob).expect(200);
      await put(ownJob).expect(200);
      await new Promise((resolve) => setTimeout(resolve, 300));

      const after = await fixtures.prisma.apiKey.findUniqueOrThrow({ where: { id: owner.keyId } });
      expect(after.lastUsedAt).toEqual(first);
    });

    it('accepts "Bearer <key>" as well as the bare key', async () => {
      const response = await api.http.put(downloadPath(job)).set('Authorization', `Bearer ${job.apiKey}`).expect(200);
      expect(response.body.status).toBe('pending');
    });

    it('returns the same operation to repeated PUTs while it is pending', async () => {
      const first = await put(job).expect(200);
      const second = await put(job).expect(200);
      const third = await put(job).expect(200);

      expect(new Set([first.body.id, second.body.id, third.body.id]).size).toBe(1);
      expect(await fixtures.prisma.downloadOperation.count({ where: { jobId: job.jobId } })).toBe(1);
    });

    it('ignores a malformed or unknown Prefer header and answers at once', async () => {
      const response = await put(job).set('Prefer', 'wait=soon, handling=strict').expect(200);
      expect(response.body.status).toBe('pending');
    });

    it("puts the operation in its organisation's line once; a worker admits it as one job under the operation id", async () => {
      // A line of its own: what other tests left waiting would be admitted first.
      const prefix = uniqueQueuePrefix();
      const own = await startTestApp('api', { QUEUE_PREFIX: prefix });
      try {
        const { body } = await own.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(200);
        await own.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(200);

        expect(await inLine(job.organisationId, prefix)).toEqual([body.id]);
        expect(await own.app.get(PackageQueue).admitNext(2)).toEqual([body.id]);
        await inspectQueue(prefix, async (queue) => {
          const queued = await queue.getJob(body.id);
          // With the token of its admission, which its worker releases the organisation's slot with.
          expect(queued?.data).toEqual({ operationId: body.id, admission: expect.stringMatching(/^\d+$/) });
          const waiting = await queue.getJobs(['waiting', 'delayed', 'active']);
          expect(waiting.filter((j) => j.data.operationId === body.id)).toHaveLength(1);
        });
        await own.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(200);
        expect(await inLine(job.organisationId, prefix)).toEqual([]);
      } finally {
        await own.close();
      }
    });
  });

  describe('racing requests', () => {
    it('turns 100 concurrent PUTs on two API processes into one operation and one queued job', async () => {
      const second = await startTestApp('api', { QUEUE_PREFIX: queuePrefix });
      try {
        const servers = [api.server, second.server];
        const responses = await Promise.all(
          Array.from({ length: 100 }, (_, i) => request(servers[i % 2]).put(downloadPath(job)).set('Authorization', job.apiKey)),
        );

        expect(responses.map((r) => r.status)).toEqual(Array(100).fill(200));
        const ids = new Set(responses.map((r) => r.body.id));
        expect(ids.size).toBe(1);
        expect(await fixtures.prisma.downloadOperation.count({ where: { workflowId: job.workflowId, jobId: job.jobId } })).toBe(1);
        expect(await inLine(job.organisationId)).toEqual([...ids]);
      } finally {
        await second.close();
      }
    });

    it('a PUT that read its job just before a re-registration as running records no operation: 409 once the registration commits', async () => {
      const racing = await fixtures.job({ inputs: { 'a.tif': 'x' } });
      let commit = () => undefined as void;
      const committed = new Promise<void>((resolve) => (commit = resolve));
      let holding = (_pid: number) => undefined as void;
      const holder = new Promise<number>((resolve) => (holding = resolve));
      // A registration under way, as the catalogue runs one: the job's row locked and its status changed, uncommitted.
      const registration = fixtures.prisma.$transaction(async (tx) => {
        await tx.$queryRaw`SELECT 1 FROM jobs WHERE workflow_id = ${racing.workflowId} AND job_id = ${racing.jobId} FOR UPDATE`;
        await tx.$executeRaw`UPDATE jobs SET status = 'running', finished_at = NULL, updated_at = now() WHERE workflow_id = ${racing.workflowId} AND job_id = ${racing.jobId}`;
        const [{ pid }] = await tx.$queryRaw<Array<{ pid: number }>>`SELECT pg_backend_pid() AS pid`;
        holding(pid);
        await committed;
      }, { timeout: 30_000 });
      try {
        const pid = await holder;
        const answer = put(racing).then((response) => response);
        // The PUT has read the job as completed (the change is not committed yet) and now waits for the registration.
        await waitFor(async () => {
          const [{ blocked }] = await fixtures.prisma.$queryRaw<Array<{ blocked: number }>>`
            SELECT count(*)::int AS blocked FROM pg_stat_activity WHERE ${pid}::int = ANY(pg_blocking_pids(pid))`;
          return blocked > 0;
        }, 10_000, 'the PUT to wait for the registration');
        commit();
        await registration;

        const { status, body } = await answer;
        expect({ status, body }).toEqual({ status: 409, body: envelope('JOB_NOT_FINISHED') });
        expect(await fixtures.prisma.downloadOperation.count({ where: { workflowId: racing.workflowId, jobId: racing.jobId } })).toBe(0);
      } finally {
        commit();
        await registration.catch(() => undefined);
      }
    });

    it('a PUT kept waiting by a registration past the statement timeout answers 503 with Retry-After, and records nothing', async () => {
      const waiting = await fixtures.job({ inputs: { 'a.tif': 'x' } });
      let commit = () => undefined as void;
      const committed = new Promise<void>((resolve) => (commit = resolve));
      let holding = () => undefined as void;
      const held = new Promise<void>((resolve) => (holding = resolve));
      // A registration that holds the job's row longer than any statement may wait (10 s).
      const registration = fixtures.prisma.$transaction(async (tx) => {
        await tx.$queryRaw`SELECT 1 FROM jobs WHERE workflow_id = ${waiting.workflowId} AND job_id = ${waiting.jobId} FOR UPDATE`;
        holding();
        await committed;
      }, { timeout: 60_000 });
      try {
        await held;
        const answer = await put(waiting);
        expect({ status: answer.status, body: answer.body }).toEqual({ status: 503, body: envelope('SERVICE_UNAVAILABLE') });
        expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);
        expect(await fixtures.prisma.downloadOperation.count({ where: { workflowId: waiting.workflowId, jobId: waiting.jobId } })).toBe(0);
      } finally {
        commit();
        await registration.catch(() => undefined);
      }
    }, 40_000);
  });

  describe('operations that have ended', () => {
    it('replaces a failed operation with a new one on the next PUT', async () => {
      const { body: first } = await put(job).expect(200);
      await fixtures.prisma.downloadOperation.update({ where: { id: first.id }, data: { status: 'failed', errorCode: 'NO_ASSETS' } });

      const { body: second } = await put(job).expect(200);

      expect(second.id).not.toBe(first.id);
      expect(second.status).toBe('pending');
      const statuses = await fixtures.prisma.downloadOperation.findMany({ where: { jobId: job.jobId }, orderBy: { createdAt: 'asc' }, select: { status: true } });
      expect(statuses.map((s) => s.status)).toEqual(['failed', 'pending']);
    });

    it('shows a failed operation with its error through GET', async () => {
      const { body } = await put(job).expect(200);
      await fixtures.prisma.downloadOperation.update({ where: { id: body.id }, data: { status: 'failed', errorCode: 'SOURCE_MISSING', errorMessage: 'an asset of the job run no longer exists' } });

      const response = await api.http.get(downloadPath(job)).set('Authorization', job.apiKey).expect(200);

      expect(response.body).toMatchObject({ id: body.id, status: 'failed', signed_url: '', error: { code: 'SOURCE_MISSING', message: 'an asset of the job run no longer exists' } });
    });

    it('replaces a ready package whose retention has run out', async () => {
      // On a database of its own: a worker of another file sweeping the shared one could expire the package
      // before the PUT does, and the test would pass without the PUT's own check.
      await onDatabaseOfItsOwn(async ({ url, fixtures: own }) => {
        const ownApi = await startTestApp('api', { DATABASE_URL: url, QUEUE_PREFIX: queuePrefix });
        try {
          const target = await own.job({ inputs: { 'a.tif': 'raster' } });
          const putOwn = () => ownApi.http.put(downloadPath(target)).set('Authorization', target.apiKey).expect(200);
          const { body: first } = await putOwn();
          await own.prisma.downloadOperation.update({
            where: { id: first.id },
            data: { status: 'ready', archiveKey: 'packages/x.zip', sizeBytes: 10n, readyAt: new Date(Date.now() - 7_200_000), expiresAt: new Date(Date.now() - 1_000) },
          });

          const { body: second } = await putOwn();

          expect(second.id).not.toBe(first.id);
          expect(second.status).toBe('pending');
          const old = await own.prisma.downloadOperation.findUniqueOrThrow({ where: { id: first.id } });
          expect(old.status).toBe('expired');
        } finally {
          await ownApi.close();
        }
      });
    });

    it('signs a fresh URL for a ready package on every PUT, capped by the package expiry', async () => {
      const { body } = await put(job).expect(200);
      const packageExpiry = new Date(Date.now() + 90_000);
      await fixtures.prisma.downloadOperation.update({
        where: { id: body.id },
        data: { status: 'ready', archiveKey: `packages/${job.workflowId}/${job.jobId}/${body.id}.zip`, sizeBytes: 1234n, sha256: 'ab'.repeat(32), readyAt: new Date(), expiresAt: packageExpiry },
      });

      const first = await put(job).expect(200);
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const second = await put(job).expect(200);

      for (const answer of [first, second]) {
        expect(answer.body).toMatchObject({ id: body.id, status: 'ready', progress: 100, size_bytes: 1234, sha256: 'ab'.repeat(32) });
        expect(answer.headers['retry-after']).toBeUndefined();
        const url = new URL(answer.body.signed_url);
        expect(url.pathname).toBe(`/test-packages/packages/${job.workflowId}/${job.jobId}/${body.id}.zip`);
        expect(url.searchParams.get('response-content-disposition')).toBe(`attachment; filename="${job.workflowId}_${job.jobId}.zip"`);
        // The TTL (an hour by default) is capped by the package's own expiry, 90 s away.
        expect(Number(url.searchParams.get('X-Amz-Expires'))).toBeLessThanOrEqual(90);
        // expires_at is the URL's own expiry, to the millisecond: its signing time plus its lifetime.
        const signedAt = url.searchParams.get('X-Amz-Date')!.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z');
        expect(answer.body.expires_at).toBe(new Date(Date.parse(signedAt) + Number(url.searchParams.get('X-Amz-Expires')) * 1000).toISOString());
        expect(new Date(answer.body.expires_at).getTime()).toBeLessThanOrEqual(packageExpiry.getTime());
      }
      expect(second.body.signed_url).not.toBe(first.body.signed_url);
    });
  });

  it('signs no URL to outlive the temporary credentials it is signed with (an instance, task or pod role)', async () => {
    // The SDK's default chain reads these from the environment; it renews credentials only five minutes before
    // they expire, and a URL signed with them stops working then, whatever its X-Amz-Expires.
    const credentialsExpiry = new Date(Math.floor(Date.now() / 1000) * 1000 + 20 * 60_000);
    const saved = { token: process.env.AWS_SESSION_TOKEN, expiration: process.env.AWS_CREDENTIAL_EXPIRATION };
    process.env.AWS_SESSION_TOKEN = 'session-token-of-a-role';
    process.env.AWS_CREDENTIAL_EXPIRATION = credentialsExpiry.toISOString();
    const roleApi = await startTestApp('api', { QUEUE_PREFIX: queuePrefix, SIGNED_URL_TTL_SECONDS: '3600' });
    try {
      const target = await fixtures.job({ inputs: { 'a.tif': 'x' } });
      const { body } = await roleApi.http.put(downloadPath(target)).set('Authorization', target.apiKey).expect(200);
      await fixtures.prisma.downloadOperation.update({
        where: { id: body.id },
        data: { status: 'ready', archiveKey: `packages/${target.workflowId}/${target.jobId}/${body.id}.zip`, sizeBytes: 10n, readyAt: new Date(), expiresAt: new Date(Date.now() + 24 * 3600_000) },
      });

      const { body: ready } = await roleApi.http.put(downloadPath(target)).set('Authorization', target.apiKey).expect(200);

      const url = new URL(ready.signed_url);
      expect(url.searchParams.get('X-Amz-Security-Token')).toBe('session-token-of-a-role');
      const lifetime = Number(url.searchParams.get('X-Amz-Expires'));
      expect(lifetime).toBeLessThanOrEqual(20 * 60);
      expect(lifetime).toBeGreaterThan(15 * 60);
      expect(new Date(ready.expires_at).getTime()).toBeLessThanOrEqual(credentialsExpiry.getTime());
    } finally {
      await roleApi.close();
      for (const [name, value] of [['AWS_SESSION_TOKEN', saved.token], ['AWS_CREDENTIAL_EXPIRATION', saved.expiration]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  describe('a ready package asked for again', () => {
    const makeReady = async (target: SeededJob, expiresAt: Date): Promise<string> => {
      const { body } = await put(target).expect(200);
      await fixtures.prisma.downloadOperation.update({
        where: { id: body.id },
        data: { status: 'ready', archiveKey: `packages/${target.workflowId}/${target.jobId}/${body.id}.zip`, sizeBytes: 10n, readyAt: new Date(), expiresAt },
      });
      return body.id;
    };
    const jobKey = (target: SeededJob) => ({ workflowId_id: { workflowId: target.workflowId, id: target.jobId } });

    it('answers from the last lookup for READY_CACHE_SECONDS, however often it is polled meanwhile, then reads Postgres again', async () => {
      // 4 s rather than the default 1 s: the change and the next request fit in it even on a busy machine.
      const cache = await startTestApp('api', { QUEUE_PREFIX: queuePrefix, READY_CACHE_SECONDS: '4' });
      const putVia = () => cache.http.put(downloadPath(job)).set('Authorization', job.apiKey);
      try {
        const id = await makeReady(job, new Date(Date.now() + 3_600_000));
        await putVia().expect(200);
        // Taken once the first answer is in: the lookup was stored before it, so its window ends before this one.
        const lookedUpAt = Date.now();
        // A change made beside the service: the job is re-registered as running.
        await fixtures.prisma.job.update({ where: jobKey(job), data: { status: 'running' } });

        const cached = await putVia().expect(200);
        // A client polling twice a second: answers from the cache must not keep the lookup alive.
        while (Date.now() - lookedUpAt < 3_500) {
          await putVia();
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, lookedUpAt + 4_100 - Date.now())));
        const fresh = await putVia().expect(409);

        expect(cached.body).toMatchObject({ id, status: 'ready' });
        expect(fresh.body).toEqual(envelope('JOB_NOT_FINISHED'));
      } finally {
        await cache.close();
      }
    });

    it('still checks the caller and the package expiry on every answer while the lookup is reused', async () => {
      const longCache = await startTestApp('api', { QUEUE_PREFIX: queuePrefix, READY_CACHE_SECONDS: '60' });
      try {
        const id = await makeReady(job, new Date(Date.now() + 1_500));
        const first = await longCache.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(200);
        const stranger = await fixtures.organisationWithKey();

        const forbidden = await longCache.http.put(downloadPath(job)).set('Authorization', stranger.apiKey).expect(403);
        await new Promise((resolve) => setTimeout(resolve, 1_600));
        const afterExpiry = await longCache.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(200);

        expect(first.body).toMatchObject({ id, status: 'ready' });
        expect(forbidden.body).toEqual(envelope('FORBIDDEN'));
        expect(afterExpiry.body.id).not.toBe(id);
        expect(afterExpiry.body.status).toBe('pending');
        expect(await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id } })).toMatchObject({ status: 'expired' });
      } finally {
        await longCache.close();
      }
    });
  });

  describe('GET', () => {
    it('answers 404 with the envelope when there is no operation, and creates nothing', async () => {
      const response = await api.http.get(downloadPath(job)).set('Authorization', job.apiKey).expect(404);

      expect(response.body).toEqual(envelope('NOT_FOUND'));
      expect(await fixtures.prisma.downloadOperation.count({ where: { jobId: job.jobId } })).toBe(0);
    });

    it('returns the live operation without creating or queueing anything', async () => {
      const { body } = await put(job).expect(200);
      const response = await api.http.get(downloadPath(job)).set('Authorization', job.apiKey).expect(200);

      expect(response.body).toMatchObject({ id: body.id, status: 'pending', signed_url: '', workflowId: job.workflowId });
      expect(await fixtures.prisma.downloadOperation.count({ where: { jobId: job.jobId } })).toBe(1);
    });
  });

  describe('errors: one envelope, checked in the contract order', () => {
    it('400 names each malformed path parameter, before the key is even looked at', async () => {
      const response = await api.http.put(`/v0/workflows/bad.id/jobs/${'x'.repeat(65)}/download`).expect(400);

      expect(response.body).toEqual(
        envelope('INVALID_PARAMETER', expect.any(String), [
          { field: 'workflow_id', message: 'workflow_id must be 1 to 64 characters of A-Z a-z 0-9 _ -' },
          { field: 'job_id', message: 'job_id must be 1 to 64 characters of A-Z a-z 0-9 _ -' },
        ]),
      );
    });

    it.each([
      ['a space', '/v0/workflows/has%20space/jobs/j/download', 'workflow_id'],
      ['an encoded slash', '/v0/workflows/w/jobs/a%2Fb/download', 'job_id'],
      ['unicode', '/v0/workflows/%C3%A9t%C3%A9/jobs/j/download', 'workflow_id'],
      ['an escape that does not decode', '/v0/workflows/%zz/jobs/j/download', 'workflow_id'],
      ['a task id that does not decode', '/v0/workflows/w/jobs/j/tasks/%E0%A4%A/download', 'task_id'],
      ['an empty id', '/v0/workflows//jobs/j/download', 'workflow_id'],
      ['an empty task id', '/v0/workflows/w/jobs/j/tasks//download', 'task_id'],
    ])('400 for %s', async (_label, path, field) => {
      const response = await api.http.put(path).set('Authorization', job.apiKey).expect(400);
      expect(response.body.error.code).toBe('INVALID_PARAMETER');
      expect(response.body.error.details.map((d: { field: string }) => d.field)).toEqual([field]);
    });

    it.each([
      ['no Authorization header', undefined],
      ['an unknown key', 'jdk_thisKeyDoesNotExistAnywhere00000000000000000'],
      ['a Basic credential', 'Basic dXNlcjpwYXNz'],
      ['a bare "Bearer"', 'Bearer'],
      ['two tokens', 'Bearer a b'],
    ])('401 UNAUTHENTICATED for %s', async (_label, authorization) => {
      const call = api.http.put(downloadPath(job));
      if (authorization !== undefined) call.set('Authorization', authorization);
      const response = await call.expect(401);
      expect(response.body).toEqual(envelope('UNAUTHENTICATED'));
    });

    it('a body sent along is never read: malformed JSON without a key is 401, and with a key the answer is as without a body', async () => {
      const unauthenticated = await api.http.put(downloadPath(job)).set('Content-Type', 'application/json').send('{bad').expect(401);
      const withKey = await api.http.put(downloadPath(job)).set('Authorization', job.apiKey).set('Content-Type', 'application/json').send(`{"pad": "${'x'.repeat(64 * 1024)}"`).expect(200);

      expect(unauthenticated.body).toEqual(envelope('UNAUTHENTICATED'));
      expect(withKey.body).toMatchObject({ workflowId: job.workflowId, job_id: job.jobId });
    });

    it('401 for a revoked key', async () => {
      const owner = await fixtures.organisationWithKey();
      const revokedJob = await fixtures.job({ owner });
      await fixtures.apiKeys.revoke(owner.keyId);

      const response = await put(revokedJob).expect(401);

      expect(response.body).toEqual(envelope('UNAUTHENTICATED'));
    });

    it("403 for a workflow of another organisation, and nothing is recorded", async () => {
      const stranger = await fixtures.organisationWithKey();

      const response = await put(job, stranger.apiKey).expect(403);

      expect(response.body).toEqual(envelope('FORBIDDEN'));
      expect(await fixtures.prisma.downloadOperation.count({ where: { jobId: job.jobId } })).toBe(0);
    });

    it('404 for an unknown workflow and for an unknown job of a known workflow', async () => {
      const unknownWorkflow = await put({ ...job, workflowId: 'no-such-workflow' }).expect(404);
      const unknownJob = await put({ ...job, jobId: 'no-such-job' }).expect(404);

      expect(unknownWorkflow.body).toEqual(envelope('NOT_FOUND'));
      expect(unknownJob.body).toEqual(envelope('NOT_FOUND'));
    });

    it.each(['queued', 'running'])('409 JOB_NOT_FINISHED for a %s job', async (status) => {
      const unfinished = await fixtures.job({ status });
      const response = await put(unfinished).expect(409);
      expect(response.body).toEqual(envelope('JOB_NOT_FINISHED'));
    });

    it.each(['failed', 'cancelled'])('accepts a %s job run, which still has assets worth downloading', async (status) => {
      const ended = await fixtures.job({ status });
      await put(ended).expect(200);
    });

    it('404 envelope for unknown routes and for unknown methods on the download path', async () => {
      const unknownRoute = await api.http.get('/v1/nothing/here').expect(404);
      const unknownMethod = await api.http.delete(downloadPath(job)).set('Authorization', job.apiKey).expect(404);

      expect(unknownRoute.body).toEqual(envelope('NOT_FOUND'));
      expect(unknownMethod.body).toEqual(envelope('NOT_FOUND'));
    });

    it('429 RATE_LIMITED with Retry-After once the key has spent its budget', async () => {
      const limited = await startTestApp('api', { RATE_LIMIT_PER_MINUTE: '3' });
      try {
        for (let i = 0; i < 3; i++) await limited.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(200);

        const response = await limited.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(429);

        expect(response.body).toEqual(envelope('RATE_LIMITED'));
        expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
        expect(Number(response.headers['retry-after'])).toBeLessThanOrEqual(60);
        // Another key has its own budget.
        const other = await fixtures.job();
        await limited.http.put(downloadPath(other)).set('Authorization', other.apiKey).expect(200);
      } finally {
        await limited.close();
      }
    });
  });

  describe('unreachable dependencies', () => {
    it('answers 503 SERVICE_UNAVAILABLE within seconds when Redis is unreachable, then a later PUT queues the recorded operation', async () => {
      const prefix = uniqueQueuePrefix();
      const noRedis = await startTestApp('api', { REDIS_URL: 'redis://127.0.0.1:1', QUEUE_PREFIX: prefix });
      try {
        // Answered, not hung: the 30 s is a deadline for a request that never returns, not a speed.
        const response = await noRedis.http.put(downloadPath(job)).set('Authorization', job.apiKey).timeout(30_000).expect(503);

        expect(response.body).toEqual(envelope('SERVICE_UNAVAILABLE'));
        expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
      } finally {
        await noRedis.close();
      }
      // The operation was recorded before queueing failed; with Redis back, the next PUT queues it.
      const recorded = await fixtures.prisma.downloadOperation.findFirstOrThrow({ where: { jobId: job.jobId } });
      const healthy = await startTestApp('api', { QUEUE_PREFIX: prefix });
      try {
        expect(await healthy.app.get(FairShare).stateOf(recorded.id)).toBe('unknown');
        const { body } = await healthy.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(200);
        expect(body.id).toBe(recorded.id);
        expect(await healthy.app.get(FairShare).stateOf(recorded.id)).toBe('queued');
      } finally {
        await healthy.close();
      }
    });

    it('answers 503 within seconds when Postgres is unreachable', async () => {
      const noPostgres = await startTestApp('api', { DATABASE_URL: 'postgresql://postgres:postgres@127.0.0.1:1/none' });
      try {
        // Answered, not hung: the 30 s is a deadline for a request that never returns, not a speed.
        const response = await noPostgres.http.put(downloadPath(job)).set('Authorization', job.apiKey).timeout(30_000).expect(503);
        expect(response.body).toEqual(envelope('SERVICE_UNAVAILABLE'));
      } finally {
        await noPostgres.close();
      }
    });
  });
});
