import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Webhook } from 'standardwebhooks';
import { WebhookSender } from '../src/notifications/webhook-sender.js';
import { PackageObjects } from '../src/downloads/package-objects.js';
import { loadConfig } from '../src/platform/config/app-config.js';
import { download, downloadPath, Fixtures, startTestApp, testConfig, type SeededJob, type TestApp } from './support/harness.js';
import { freePort, startRelay, startS3Process, startS3Proxy, waitFor, type Child } from './support/processes.js';
import { WebhookQueue } from '../src/platform/queues/webhook-queue.js';
import { WEBHOOK_QUEUE } from '../src/platform/queues/queue-names.js';
import { WebhookDispatcher } from '../src/notifications/webhook-dispatcher.js';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

const MiB = 1024 * 1024;
const raster = (bytes: number) => Buffer.concat([Buffer.from('II*\0'), randomBytes(bytes - 4)]);
const CATALOGUE_TOKEN = 'catalogue-token-for-webhooks';
const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

/** Runs the operator CLI and answers the JSON it printed. */
function cli(...args: string[]): Promise<any> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, WEBHOOK_ALLOW_PRIVATE: 'true' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(`cli ${args.join(' ')}: ${code} ${stderr}`))));
  });
}

/**
 * How long a test waits for a cancelled build to stop before it calls it stuck; the contract's promise (§5.2: "a
 * pending build stops within 5 seconds") is then checked against CANCEL_STOPS_WITHIN_MS, so a slow stop fails
 * with its figure rather than a timeout.
 */
const BUILD_STOP_BUDGET_MS = 30_000;
const CANCEL_STOPS_WITHIN_MS = 5_000;

interface Received {
  headers: Record<string, string>;
  body: string;
  at: number;
}

/** A webhook receiver on loopback that answers as told (a status, after a delay) and keeps what it got. */
async function startReceiver(answer: (count: number) => { status: number; delayMs?: number }) {
  const received: Received[] = [];
  // Answers still delayed when the receiver closes are dropped with it, not left to fire on a closed server.
  const delayed = new Set<NodeJS.Timeout>();
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      received.push({ headers: request.headers as Record<string, string>, body, at: Date.now() });
      const { status, delayMs = 0 } = answer(received.length);
      const timer = setTimeout(() => {
        delayed.delete(timer);
        response.writeHead(status).end('ok');
      }, delayMs);
      delayed.add(timer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hooks`,
    received,
    close: () => new Promise<void>((resolve) => {
      for (const timer of delayed) clearTimeout(timer);
      delayed.clear();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

describe('cancel, and webhooks when an operation ends', () => {
  let fixtures: Fixtures;
  let service: TestApp;

  beforeAll(async () => {
    fixtures = await Fixtures.create();
    service = await startTestApp('all', { WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_RETRY_DELAYS_SECONDS: '1,1,1', PACKAGE_DELETE_GRACE_SECONDS: '0', INTERNAL_API_TOKEN: CATALOGUE_TOKEN });
  });

  afterAll(async () => {
    await service.close();
    await fixtures.close();
  });

  const put = (job: SeededJob, wait = 30) => service.http.put(downloadPath(job)).set('Authorization', job.apiKey).set('Prefer', `wait=${wait}`).expect(200).then((r) => r.body);
  const deliveriesOf = (organisationId: string) => fixtures.prisma.webhookDelivery.findMany({ where: { organisationId }, orderBy: { attemptedAt: 'asc' } });

  describe('webhooks', () => {
    it('signs each event so that it verifies with the secret the CLI printed once, and stores that secret encrypted', async () => {
      const receiver = await startReceiver(() => ({ status: 204 }));
      try {
        const owner = await fixtures.organisationWithKey();
        const created = await cli('webhook', 'create', '--org', owner.organisationId, '--url', receiver.url);
        expect(created).toMatchObject({ id: expect.any(String), url: receiver.url, secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/) });
        const stored = await fixtures.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: created.id } });
        expect(stored.secretCiphertext).not.toContain(created.secret.slice(6));
        expect(await cli('webhook', 'list', '--org', owner.organisationId)).toEqual([{ id: created.id, organisation_id: owner.organisationId, url: receiver.url, created_at: expect.any(String) }]);

        const job = await fixtures.job({ owner, inputs: { 'a.tif': raster(2048) } });
        const ready = await put(job);
        expect(ready.status).toBe('ready');
        await waitFor(async () => receiver.received.length === 1, 15_000, 'the event');

        const [event] = receiver.received;
        const verified = new Webhook(created.secret).verify(event.body, event.headers) as { type: string; data: Record<string, unknown> };
        expect(verified).toMatchObject({ type: 'download.ready', timestamp: expect.any(String), data: { id: ready.id, status: 'ready', workflowId: job.workflowId, job_id: job.jobId, progress: 100, sha256: ready.sha256 } });
        expect(ready.sha256).toMatch(/^[0-9a-f]{64}$/);
        expect(verified.data).not.toHaveProperty('signed_url');
        expect(() => new Webhook(`whsec_${randomBytes(32).toString('base64')}`).verify(event.body, event.headers)).toThrow();
        const deliveries = await cli('webhook', 'deliveries', '--org', owner.organisationId);
        expect(deliveries).toEqual([expect.objectContaining({ event_id: event.headers['webhook-id'], event_type: 'download.ready', attempt: 1, delivered: true, status_code: 204, next_attempt_at: null })]);
      } finally {
        await receiver.close();
      }
    }, 60_000);

    it("sends as data what a GET answers at the event's time, without signed_url: expires_at is the signed URL's expiry, not the package's", async () => {
      const receiver = await startReceiver(() => ({ status: 204 }));
      try {
        const owner = await fixtures.organisationWithKey();
        await cli('webhook', 'create', '--org', owner.organisationId, '--url', receiver.url);
        const job = await fixtures.job({ owner, inputs: { 'a.tif': raster(2048) } });
        expect((await put(job)).status).toBe('ready');
        await waitFor(async () => receiver.received.length === 1, 15_000, 'the event');
        const { body: got } = await service.http.get(downloadPath(job)).set('Authorization', job.apiKey).expect(200);

        const { type, data } = JSON.parse(receiver.received[0].body);
        const { signed_url: url, expires_at: urlExpiry, ...fields } = got;
        expect(type).toBe('download.ready');
        expect(url).toMatch(/^http/);
        expect(Object.keys(data)).toEqual(Object.keys(got).filter((key) => key !== 'signed_url'));
        expect({ ...data, expires_at: undefined }).toEqual({ ...fields, expires_at: undefined });
        // The URL's lifetime (SIGNED_URL_TTL_SECONDS, an hour here) from the event, well before the package's own
        // expiry (PACKAGE_RETENTION_HOURS, a week): within the seconds between the event and the GET.
        expect(Math.abs(new Date(data.expires_at).getTime() - new Date(urlExpiry).getTime())).toBeLessThan(5_000);
        const operation = await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: got.id } });
        expect(new Date(data.expires_at).getTime()).toBeLessThan(operation.expiresAt!.getTime() - 3_600_000);
      } finally {
        await receiver.close();
      }
    }, 60_000);

    it('retries a receiver that answers 500 twice with the same webhook-id, and records every attempt', async () => {
      const receiver = await startReceiver((count) => ({ status: count <= 2 ? 500 : 200 }));
      try {
        const owner = await fixtures.organisationWithKey();
        // This time the endpoint is created, listed and deleted through the catalogue API.
        const webhooks = `/internal/v0/organisations/${owner.organisationId}/webhooks`;
        const catalogue = (test: ReturnType<TestApp['http']['get']>) => test.set('Authorization', `Bearer ${CATALOGUE_TOKEN}`);
        const { body: created } = await catalogue(service.internal!.http.post(webhooks)).send({ url: receiver.url }).expect(201);
        expect(created).toMatchObject({ id: expect.any(String), url: receiver.url, secret: expect.stringMatching(/^whsec_/) });
        const { body: listed } = await catalogue(service.internal!.http.get(webhooks)).expect(200);
        expect(listed).toEqual([{ id: created.id, organisation_id: owner.organisationId, url: receiver.url, created_at: expect.any(String) }]);
        const job = await fixtures.job({ owner, inputs: { 'a.tif': raster(2048) } });
        await put(job);

        await waitFor(async () => receiver.received.length === 3 && (await deliveriesOf(owner.organisationId)).length === 3, 30_000, 'three attempts');
        await catalogue(service.internal!.http.delete(`${webhooks}/${created.id}`)).expect(200);
        expect((await catalogue(service.internal!.http.get(webhooks)).expect(200)).body).toEqual([]);

        expect(new Set(receiver.received.map((got) => got.headers['webhook-id'])).size).toBe(1);
        for (const got of receiver.received) expect(() => new Webhook(created.secret).verify(got.body, got.headers)).not.toThrow();
        const attempts = await deliveriesOf(owner.organisationId);
        expect(attempts.map(({ attempt, statusCode, delivered }) => ({ attempt, statusCode, delivered }))).toEqual([
          { attempt: 1, statusCode: 500, delivered: false },
          { attempt: 2, statusCode: 500, delivered: false },
          { attempt: 3, statusCode: 200, delivered: true },
        ]);
        expect(attempts[0].nextAttemptAt).not.toBeNull();
        expect(attempts[2].nextAttemptAt).toBeNull();
        expect(attempts.filter((attempt) => attempt.delivered)).toHaveLength(1);
      } finally {
        await receiver.close();
      }
    }, 60_000);

    it('a delivery that finds Postgres away waits for it without spending an attempt, then is sent once and recorded as attempt 1', async () => {
      const receiver = await startReceiver(() => ({ status: 204 }));
      const relay = await startRelay(5432);
      const databaseUrl = new URL(process.env.DATABASE_URL!);
      databaseUrl.port = String(relay.port);
      // A worker of its own whose Postgres goes through the relay; its retries are a second apart, so that spent
      // attempts would run out while Postgres is away.
      const worker = await startTestApp('worker', { DATABASE_URL: databaseUrl.toString(), WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_RETRY_DELAYS_SECONDS: '1,1,1', RETRY_BASE_DELAY_MS: '500' });
      try {
        // A ready operation of an organisation with no endpoint yet (nothing is dispatched for it), then its event
        // written as the outbox trigger writes it, for an endpoint created since.
        const owner = await fixtures.organisationWithKey();
        const ready = await put(await fixtures.job({ owner, inputs: { 'a.tif': raster(2048) } }));
        const endpoint = await cli('webhook', 'create', '--org', owner.organisationId, '--url', receiver.url);
        const eventId = randomUUID();
        await fixtures.prisma.$executeRaw`INSERT INTO webhook_events (id, organisation_id, type, operation_id, operation)
          SELECT ${eventId}::uuid, ${owner.organisationId}::uuid, 'download.ready', o.id, to_jsonb(o) FROM download_operations o WHERE o.id = ${ready.id}::uuid`;
        const event = { id: eventId };
        await relay.cut();

        await worker.app.get(WebhookQueue).add(event.id, endpoint.id);
        await new Promise((resolve) => setTimeout(resolve, 4_000));
        expect(receiver.received).toEqual([]);
        await relay.restore();

        await waitFor(async () => (await deliveriesOf(owner.organisationId)).length === 1, 20_000, 'the delivery');
        expect(receiver.received).toHaveLength(1);
        expect(receiver.received[0].headers['webhook-id']).toBe(event.id);
        expect(await deliveriesOf(owner.organisationId)).toEqual([expect.objectContaining({ eventId: event.id, attempt: 1, delivered: true, statusCode: 204, nextAttemptAt: null })]);
      } finally {
        await worker.close();
        await relay.cut().catch(() => undefined);
        await receiver.close();
      }
    }, 60_000);

    it('a retry that Redis lost (restarted empty) is queued again by the reconciler: sent with the same webhook-id, recorded as attempt 2', async () => {
      const receiver = await startReceiver((count) => ({ status: count === 1 ? 500 : 204 }));
      // A worker of its own, whose one retry comes 5 minutes after a failure.
      const worker = await startTestApp('worker', { WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_RETRY_DELAYS_SECONDS: '300' });
      const connection = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
      const queue = new Queue(WEBHOOK_QUEUE, { connection, prefix: worker.config.QUEUE_PREFIX });
      try {
        const owner = await fixtures.organisationWithKey();
        const ready = await put(await fixtures.job({ owner, inputs: { 'a.tif': raster(2048) } }));
        const endpoint = await cli('webhook', 'create', '--org', owner.organisationId, '--url', receiver.url);
        const eventId = randomUUID();
        await fixtures.prisma.$executeRaw`INSERT INTO webhook_events (id, organisation_id, type, operation_id, operation, dispatched_at)
          SELECT ${eventId}::uuid, ${owner.organisationId}::uuid, 'download.ready', o.id, to_jsonb(o), now() FROM download_operations o WHERE o.id = ${ready.id}::uuid`;
        await worker.app.get(WebhookQueue).add(eventId, endpoint.id);
        await waitFor(async () => (await deliveriesOf(owner.organisationId)).length === 1, 20_000, 'the first attempt');

        // Redis loses the retry waiting in it (once the job has moved to its delay: a running job is locked);
        // two hours pass, on the record.
        const jobId = `${eventId}.${endpoint.id}`;
        await waitFor(async () => (await queue.getJobState(jobId)) === 'delayed', 10_000, 'the retry to wait');
        expect(await queue.remove(jobId)).toBe(1);
        const hoursAgo = (hours: number) => new Date(Date.now() - hours * 3600_000);
        await fixtures.prisma.webhookEndpoint.update({ where: { id: endpoint.id }, data: { createdAt: hoursAgo(3) } });
        await fixtures.prisma.webhookEvent.update({ where: { id: eventId }, data: { createdAt: hoursAgo(2), dispatchedAt: hoursAgo(2) } });
        await fixtures.prisma.webhookDelivery.updateMany({ where: { eventId }, data: { attemptedAt: hoursAgo(2), nextAttemptAt: new Date(hoursAgo(2).getTime() + 300_000) } });

        await worker.app.get(WebhookDispatcher).redriveOverdue();

        await waitFor(async () => (await deliveriesOf(owner.organisationId)).some((attempt) => attempt.delivered), 20_000, 'the retry');
        expect(new Set(receiver.received.map((got) => got.headers['webhook-id']))).toEqual(new Set([eventId]));
        const attempts = await deliveriesOf(owner.organisationId);
        expect(attempts[0]).toMatchObject({ attempt: 1, statusCode: 500, delivered: false });
        // Every process's reconciler looks at the whole database: another file's, on its own queue prefix, may
        // have queued this one too in the moment it was overdue. Whoever sent it, it went on as attempt 2.
        expect(attempts.slice(1)).toEqual(attempts.slice(1).map(() => expect.objectContaining({ attempt: 2, statusCode: 204, delivered: true, nextAttemptAt: null })));
      } finally {
        await queue.close();
        connection.disconnect();
        await worker.close();
        await receiver.close();
      }
    }, 60_000);

    it('an event older than OPERATION_HISTORY_DAYS, its attempts pruned, is not taken for one never sent', async () => {
      const receiver = await startReceiver(() => ({ status: 204 }));
      // Retries spread over 55 hours, history kept one day: the retry window reaches past what the sweep keeps.
      const worker = await startTestApp('worker', { WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_RETRY_DELAYS_SECONDS: '200000', OPERATION_HISTORY_DAYS: '1' });
      try {
        const owner = await fixtures.organisationWithKey();
        const ready = await put(await fixtures.job({ owner, inputs: { 'a.tif': raster(2048) } }));
        const endpoint = await cli('webhook', 'create', '--org', owner.organisationId, '--url', receiver.url);
        const hoursAgo = (hours: number) => new Date(Date.now() - hours * 3600_000);
        await fixtures.prisma.webhookEndpoint.update({ where: { id: endpoint.id }, data: { createdAt: hoursAgo(70) } });
        await fixtures.prisma.$executeRaw`INSERT INTO webhook_events (id, organisation_id, type, operation_id, operation, created_at, dispatched_at)
          SELECT ${randomUUID()}::uuid, ${owner.organisationId}::uuid, 'download.ready', o.id, to_jsonb(o), ${hoursAgo(60)}, ${hoursAgo(60)}
            FROM download_operations o WHERE o.id = ${ready.id}::uuid`;

        await worker.app.get(WebhookDispatcher).redriveOverdue();
        await new Promise((resolve) => setTimeout(resolve, 3_000));

        expect(receiver.received).toEqual([]);
        expect(await deliveriesOf(owner.organisationId)).toEqual([]);
      } finally {
        await worker.close();
        await receiver.close();
      }
    }, 30_000);

    it('an endpoint whose secret no longer decrypts (WEBHOOK_SECRET_KEY changed): nothing is sent, and every attempt is recorded saying why', async () => {
      const receiver = await startReceiver(() => ({ status: 204 }));
      try {
        const owner = await fixtures.organisationWithKey();
        const endpoint = await cli('webhook', 'create', '--org', owner.organisationId, '--url', receiver.url);
        // What a changed key looks like from here: the stored secret's authentication tag no longer matches.
        const stored = await fixtures.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: endpoint.id } });
        const [format, iv, , ciphertext] = stored.secretCiphertext.split(':');
        await fixtures.prisma.webhookEndpoint.update({ where: { id: endpoint.id }, data: { secretCiphertext: [format, iv, randomBytes(16).toString('base64'), ciphertext].join(':') } });
        await put(await fixtures.job({ owner, inputs: { 'a.tif': raster(2048) } }));

        // WEBHOOK_RETRY_DELAYS_SECONDS=1,1,1 here: the first attempt and three retries.
        await waitFor(async () => (await deliveriesOf(owner.organisationId)).length === 4, 20_000, 'four recorded attempts');

        const attempts = await deliveriesOf(owner.organisationId);
        expect(attempts.map(({ attempt, delivered, statusCode, error }) => ({ attempt, delivered, statusCode, error }))).toEqual(
          [1, 2, 3, 4].map((attempt) => ({ attempt, delivered: false, statusCode: null, error: "not sent: the endpoint's secret does not decrypt under WEBHOOK_SECRET_KEY" })),
        );
        expect(attempts[3].nextAttemptAt).toBeNull();
        expect(receiver.received).toEqual([]);
      } finally {
        await receiver.close();
      }
    }, 60_000);

    it('a slow receiver does not delay the next build', async () => {
      const receiver = await startReceiver(() => ({ status: 200, delayMs: 6_000 }));
      try {
        const owner = await fixtures.organisationWithKey();
        await cli('webhook', 'create', '--org', owner.organisationId, '--url', receiver.url);
        const first = await fixtures.job({ owner, inputs: { 'a.tif': raster(2048) } });
        const second = await fixtures.job({ owner, inputs: { 'b.tif': raster(2048) } });
        await put(first);
        await waitFor(async () => receiver.received.length >= 1, 15_000, 'the first event to reach the receiver');

        const next = await put(second);

        expect(next.status).toBe('ready');
        // The first event's delivery is still waiting on the receiver while the next package is already ready.
        expect(await deliveriesOf(owner.organisationId)).toEqual([]);
        await waitFor(async () => (await deliveriesOf(owner.organisationId)).length === 2, 30_000, 'both deliveries');
      } finally {
        await receiver.close();
      }
    }, 60_000);

    it('refuses private, loopback and metadata addresses without WEBHOOK_ALLOW_PRIVATE (when created, and on connection), and URLs with spaces or control characters', async () => {
      const strict = await startTestApp('api', { INTERNAL_API_TOKEN: 'catalogue-token-0123456789', WEBHOOK_ALLOW_PRIVATE: 'false', QUEUE_PREFIX: service.config.QUEUE_PREFIX });
      const sender = new WebhookSender(loadConfig({ ...process.env, WEBHOOK_ALLOW_PRIVATE: 'false' }));
      const receiver = await startReceiver(() => ({ status: 200 }));
      try {
        const owner = await fixtures.organisationWithKey();
        const create = (url: string) =>
          strict.internal!.http.post(`/internal/v0/organisations/${owner.organisationId}/webhooks`).set('Authorization', 'Bearer catalogue-token-0123456789').send({ url });
        for (const url of ['https://169.254.169.254/latest/meta-data/', 'https://127.0.0.1/hook', 'https://[::1]/hook', 'https://localhost/hook', 'https://10.0.0.8/hook', `http://example.com/hook`, 'https://example.com/a\u0000b', 'https://example.com/a b']) {
          const refused = await create(url).expect(400);
          expect(refused.body.error).toMatchObject({ code: 'INVALID_REQUEST', details: [{ field: 'url', message: expect.any(String) }] });
        }
        expect((await create('https://hooks.example.com/downloads').expect(201)).body.secret).toMatch(/^whsec_/);

        // A name that resolves to loopback is refused where it matters, when connecting.
        const port = new URL(receiver.url).port;
        for (const url of [`https://localhost:${port}/hooks`, 'https://169.254.169.254/latest/meta-data/']) {
          const outcome = await sender.send(url, `whsec_${randomBytes(32).toString('base64')}`, 'evt', '{}');
          expect(outcome).toMatchObject({ delivered: false, statusCode: null, error: expect.stringMatching(/not allowed|private|reserved/i) });
        }
        expect((await sender.send(receiver.url, `whsec_${randomBytes(32).toString('base64')}`, 'evt', '{}')).error).toBe('refused: only https:// URLs are called');
        expect(receiver.received).toEqual([]);
      } finally {
        sender.close();
        await receiver.close();
        await strict.close();
      }
    }, 30_000);
  });

  describe('cancel', () => {
    it('deletes a ready package at once: its signed URL answers 404, and the next PUT starts anew', async () => {
      const receiver = await startReceiver(() => ({ status: 200 }));
      try {
        const owner = await fixtures.organisationWithKey();
        await cli('webhook', 'create', '--org', owner.organisationId, '--url', receiver.url);
        const job = await fixtures.job({ owner, inputs: { 'a.tif': raster(4096) } });
        const ready = await put(job);
        expect((await download(ready.signed_url)).status).toBe(200);

        const { body: cancelled } = await service.http.delete(downloadPath(job)).set('Authorization', job.apiKey).expect(200);

        expect(cancelled).toMatchObject({ id: ready.id, status: 'cancelled', signed_url: '' });
        expect((await download(ready.signed_url)).status).toBe(404);
        expect((await service.http.get(downloadPath(job)).set('Authorization', job.apiKey).expect(200)).body.status).toBe('cancelled');
        await service.http.delete(downloadPath(job)).set('Authorization', job.apiKey).expect(404);
        const again = await put(job);
        expect(again.id).not.toBe(ready.id);
        await waitFor(async () => receiver.received.some((got) => JSON.parse(got.body).type === 'download.cancelled'), 15_000, 'the cancelled event');
      } finally {
        await receiver.close();
      }
    }, 60_000);

    it('another API process stops handing out a cancelled package at once, not once its object has been deleted', async () => {
      // Deleting the object can take seconds on a slow store: here it is held until the end of the test.
      let release = () => undefined as void;
      const deletionHeld = new Promise<void>((resolve) => (release = resolve));
      const s3 = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), { hold: (method) => (method === 'DELETE' ? deletionHeld : undefined) });
      // Processes of one deployment, with the service: they share its QUEUE_PREFIX, and so its channels.
      const deployment = { QUEUE_PREFIX: service.config.QUEUE_PREFIX };
      const cancelling = await startTestApp('api', { ...deployment, S3_ENDPOINT: `http://127.0.0.1:${s3.port}` });
      // Its lookups of ready packages are kept a minute: only the announcement can make it forget them.
      const polled = await startTestApp('api', { ...deployment, READY_CACHE_SECONDS: '60' });
      try {
        const job = await fixtures.job({ inputs: { 'a.tif': raster(4096) } });
        const ready = await put(job);
        const putOnPolled = async () => (await polled.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(200)).body;
        expect(await putOnPolled()).toMatchObject({ id: ready.id, status: 'ready' });
        expect(await putOnPolled()).toMatchObject({ id: ready.id, status: 'ready' });

        const cancel = cancelling.http.delete(downloadPath(job)).set('Authorization', job.apiKey).then((answer) => answer);
        await waitFor(async () => s3.requests.some((request) => request.method === 'DELETE'), 10_000, 'the deletion to start');
        const answered = await waitFor(async () => {
          const body = await putOnPolled();
          return body.id === ready.id ? undefined : body;
        }, 5_000, 'the other API process to stop answering the cancelled package');

        expect(answered.status).not.toBe('cancelled');
        release();
        expect((await cancel).body).toMatchObject({ id: ready.id, status: 'cancelled' });
      } finally {
        release();
        await polled.close();
        await cancelling.close();
        await s3.close();
      }
    }, 60_000);
  });

  describe('cancel past retention', () => {
    it('a ready package past its expiry has no live operation to cancel: 404, it ends expired and its object is deleted', async () => {
      const job = await fixtures.job({ inputs: { 'a.tif': raster(4096) } });
      const ready = await put(job);
      await fixtures.prisma.downloadOperation.update({ where: { id: ready.id }, data: { expiresAt: new Date(Date.now() - 1_000) } });

      const refused = await service.http.delete(downloadPath(job)).set('Authorization', job.apiKey).expect(404);

      expect(refused.body.error.code).toBe('NOT_FOUND');
      expect((await service.http.get(downloadPath(job)).set('Authorization', job.apiKey).expect(200)).body).toMatchObject({ id: ready.id, status: 'expired', signed_url: '' });
      const stored = await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: ready.id } });
      expect(stored).toMatchObject({ status: 'expired', cancelledAt: null });
      expect((await download(ready.signed_url)).status).toBe(404);
    }, 30_000);
  });

  describe('cancel, on an S3 of its own whose requests are watched', () => {
    let scratch: string;
    let s3: Child;
    let proxy: Awaited<ReturnType<typeof startS3Proxy>>;
    let local: Fixtures;
    let direct: Fixtures;
    let app: TestApp;
    let holdComplete: Promise<void> | undefined;
    let slowLookups: string | undefined;
    /** The prefix whose listing pages are held until the test releases them. */
    let heldListing: { prefix: string; released: Promise<void> } | undefined;

    beforeAll(async () => {
      scratch = await mkdtemp(path.join(tmpdir(), 'cancel-'));
      const port = await freePort();
      s3 = await startS3Process(port, scratch, ['cancel-assets', 'cancel-packages']);
      proxy = await startS3Proxy(port, {
        hold: (method, url) => {
          if (method === 'POST' && url.includes('uploadId=')) return holdComplete;
          // Looking up each single-object source takes a second: a job of many is long in planning.
          if (method === 'HEAD' && slowLookups && url.includes(slowLookups)) return new Promise<void>((resolve) => setTimeout(resolve, 1_000));
          if (method === 'GET' && heldListing && url.includes('list-type=2') && decodeURIComponent(url).includes(heldListing.prefix)) return heldListing.released;
          return undefined;
        },
      });
      const settings = { S3_BUCKET: 'cancel-packages', S3_ASSETS_BUCKET: 'cancel-assets', PACKAGE_DELETE_GRACE_SECONDS: '0' };
      local = await Fixtures.create(testConfig({ ...settings, S3_ENDPOINT: `http://127.0.0.1:${proxy.port}` }));
      direct = await Fixtures.create(testConfig({ ...settings, S3_ENDPOINT: `http://127.0.0.1:${port}` }));
      app = await startTestApp('all', { ...settings, S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`, PACKAGE_ATTEMPTS: '1' });
    }, 30_000);

    afterAll(async () => {
      await app.close();
      await local.close();
      await direct.close();
      await proxy.close();
      await s3.kill('SIGKILL');
      await rm(scratch, { recursive: true, force: true });
    });

    const packagesOf = async (job: SeededJob) =>
      ((await direct.storage.client.send(new ListObjectsV2Command({ Bucket: 'cancel-packages', Prefix: `packages/${job.workflowId}/` }))).Contents ?? []).map((o) => o.Key);
    const cancelledBuilds = async () => Number(/packaging_builds_total\{outcome="cancelled"\} (\d+)/.exec((await app.http.get('/metrics')).text)?.[1] ?? 0);

    /**
     * PUTs the job, cancels it once `underWay` says its build has got that far, and waits for the build to stop
     * within the contract's 5 s (CANCEL_STOPS_WITHIN_MS).
     * Answers the operation's id.
     */
    async function cancelOnceUnderWay(job: SeededJob, underWay: () => boolean, what: string): Promise<string> {
      const before = await cancelledBuilds();
      const { body: pending } = await app.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(200);
      await waitFor(async () => underWay(), 30_000, what);

      const cancelledAt = Date.now();
      await app.http.delete(downloadPath(job)).set('Authorization', job.apiKey).expect(200);

      await waitFor(async () => (await cancelledBuilds()) === before + 1, BUILD_STOP_BUDGET_MS, 'the build to stop');
      expect(Date.now() - cancelledAt).toBeLessThan(CANCEL_STOPS_WITHIN_MS);
      return pending.id;
    }

    it('stops a pending 1 GiB build when cancelled, aborts its upload and leaves nothing in the bucket', async () => {
      const job = await direct.job({ inputs: Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`b${i}.tif`, raster(128 * MiB)])) });
      const { body: pending } = await app.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(200);
      await waitFor(async () => (await direct.prisma.downloadOperation.findUniqueOrThrow({ where: { id: pending.id } })).bytesDone > 64n * BigInt(MiB), 60_000, 'the build to be under way');
      const before = await cancelledBuilds();

      const cancelledAt = Date.now();
      const { body: cancelled } = await app.http.delete(downloadPath(job)).set('Authorization', job.apiKey).expect(200);

      expect(cancelled).toMatchObject({ id: pending.id, status: 'cancelled' });
      // Stopped by the cancel: its outcome is 'cancelled', and no upload is completed (below).
      await waitFor(async () => (await cancelledBuilds()) === before + 1, BUILD_STOP_BUDGET_MS, 'the build to stop');
      expect(Date.now() - cancelledAt).toBeLessThan(CANCEL_STOPS_WITHIN_MS);
      const uploadIds = proxy.requests.filter((r) => r.url.includes(job.workflowId) && r.method === 'POST' && r.url.includes('uploads')).length;
      expect(uploadIds).toBe(1);
      expect(proxy.requests.some((r) => r.method === 'DELETE' && r.url.includes(job.workflowId) && r.url.includes('uploadId='))).toBe(true);
      expect(proxy.requests.some((r) => r.method === 'POST' && r.url.includes(job.workflowId) && r.url.includes('uploadId='))).toBe(false);
      expect(await packagesOf(job)).toEqual([]);
      expect(await direct.prisma.downloadOperation.findUniqueOrThrow({ where: { id: pending.id } })).toMatchObject({ status: 'cancelled', readyAt: null });
    }, 180_000);

    it('stops a build still looking up its sources when cancelled: the lookups stop and no upload starts', async () => {
      const files = Object.fromEntries(Array.from({ length: 160 }, (_, i) => [`tile-${String(i).padStart(3, '0')}.json`, `{"tile": ${i}}`]));
      const job = await direct.job({ inputs: files });
      // 160 single-object sources (one HEAD each) instead of one prefix: about ten seconds of lookups at 16 at a time.
      await direct.prisma.job.update({
        where: { workflowId_id: { workflowId: job.workflowId, id: job.jobId } },
        data: { inputs: Object.keys(files).map((name) => `s3://cancel-assets/${job.inputsPrefix}${name}`), outputs: [] },
      });
      slowLookups = job.inputsPrefix;
      try {
        const lookups = () => proxy.requests.filter((r) => r.method === 'HEAD' && r.url.includes(job.inputsPrefix)).length;
        const operationId = await cancelOnceUnderWay(job, () => lookups() > 0, 'the lookups to begin');

        const lookedUp = lookups();
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        expect(lookups()).toBe(lookedUp);
        expect(lookedUp).toBeLessThan(160);
        expect(proxy.requests.some((r) => r.url.includes(job.workflowId) && r.url.includes('uploads'))).toBe(false);
        expect(await packagesOf(job)).toEqual([]);
        expect(await direct.prisma.downloadOperation.findUniqueOrThrow({ where: { id: operationId } })).toMatchObject({ status: 'cancelled', readyAt: null, bytesTotal: null });
      } finally {
        slowLookups = undefined;
      }
    }, 60_000);

    it('stops a build waiting on a listing page when cancelled: the page in flight is given up', async () => {
      // A prefix of a million objects is a thousand pages, each a round trip: here one page takes as long as the
      // test wants.
      let release = () => undefined as void;
      const job = await direct.job({ inputs: { 'a.tif': raster(4096) } });
      heldListing = { prefix: job.inputsPrefix, released: new Promise<void>((resolve) => (release = resolve)) };
      const listings = () => proxy.requests.filter((r) => r.url.includes('list-type=2') && decodeURIComponent(r.url).includes(job.inputsPrefix)).length;
      try {
        const operationId = await cancelOnceUnderWay(job, () => listings() > 0, 'the listing to begin');

        expect(proxy.requests.some((r) => r.url.includes(job.workflowId) && r.url.includes('uploads'))).toBe(false);
        expect(await direct.prisma.downloadOperation.findUniqueOrThrow({ where: { id: operationId } })).toMatchObject({ status: 'cancelled', readyAt: null, bytesTotal: null });
      } finally {
        release();
        heldListing = undefined;
      }
    }, 60_000);

    it('a cancel that lands while the upload completes ends cancelled with no object left', async () => {
      let release: () => void = () => undefined;
      holdComplete = new Promise<void>((resolve) => (release = resolve));
      const job = await direct.job({ inputs: { 'a.tif': raster(12 * MiB) } });
      try {
        const { body: pending } = await app.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(200);
        await waitFor(async () => proxy.requests.some((r) => r.method === 'POST' && r.url.includes(job.workflowId) && r.url.includes('uploadId=')), 30_000, 'the upload to be completing');

        // The cancel is recorded first; the build stops and gives its object up; the upload then completes in S3
        // after all, so the object appears after its attempt deleted it.
        await app.http.delete(downloadPath(job)).set('Authorization', job.apiKey).expect(200);
        await waitFor(async () => (await direct.prisma.packageObject.count({ where: { operationId: pending.id, state: 'deleting' } })) === 1, 15_000, 'the attempt to give its object up');
        release();
        await waitFor(async () => (await packagesOf(job)).length === 1, 15_000, 'the late upload to land');

        // The sweep deletes what no ready operation owns, the late object too.
        await app.app.get(PackageObjects).sweep();

        expect(await direct.prisma.downloadOperation.findUniqueOrThrow({ where: { id: pending.id } })).toMatchObject({ status: 'cancelled', readyAt: null });
        expect(await packagesOf(job)).toEqual([]);
        expect(await direct.prisma.packageObject.count({ where: { operationId: pending.id } })).toBe(0);
      } finally {
        release();
        holdComplete = undefined;
      }
    }, 60_000);
  });
});
