import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import http from 'node:http';
import { connect, type Socket } from 'node:net';
import { ensureDatabase, migrate } from '../src/platform/prisma/migrator.js';
import { dropDatabase } from './support/run-resources.mjs';
import { downloadPath, Fixtures, startTestApp, testConfig, uniqueId, uniqueQueuePrefix, type TestApp } from './support/harness.js';
import { freePort, spawnService, startRelay, waitFor } from './support/processes.js';
import { ApiKeyService } from '../src/catalogue/api-key.service.js';
import { AppError } from '../src/platform/errors.js';

/** A request held by `Prefer: wait` on a raw socket, that the test can drop as a client going away would. */
function holdRequest(app: TestApp, path: string, apiKey: string, waitSeconds: number): { drop(): void; answered: Promise<number> } {
  const request = http.request(`${app.baseUrl}${path}`, { method: 'PUT', headers: { Authorization: apiKey, Prefer: `wait=${waitSeconds}` } });
  const answered = new Promise<number>((resolve) => {
    request.on('response', (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on('error', () => resolve(0));
  });
  request.end();
  return { drop: () => request.destroy(), answered };
}

const heldRequests = async (app: TestApp) => Number(/download_waiting_requests (\d+)/.exec((await app.http.get('/metrics')).text)?.[1] ?? NaN);

/**
 * Asks `path` on a raw keep-alive connection, stays idle for `idleMs`, and tells whether the service has kept
 * the connection open meanwhile, as a gateway reusing its connections expects.
 */
async function keptOpenAfterIdle(baseUrl: string, path: string, idleMs: number): Promise<boolean> {
  const { port } = new URL(baseUrl);
  const socket = connect(Number(port), '127.0.0.1');
  let received = '';
  let closed = false;
  socket.on('data', (chunk) => (received += chunk));
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  try {
    await once(socket, 'connect');
    socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n`);
    await waitFor(async () => /^HTTP\/1\.1 \d{3} [^\r]*\r\n[\s\S]*\r\n\r\n/.test(received), 5_000, `an answer to ${path}`);
    expect(received).not.toMatch(/\r\nconnection: close\r\n/i);
    await new Promise((resolve) => setTimeout(resolve, idleMs));
    return !closed;
  } finally {
    socket.destroy();
  }
}

/**
 * The server process has read everything sent on this connection so far, as `ss` shows the kernel's queues: the
 * client's send queue and the server's receive queue are both empty at once. (A process that has read a
 * request's first bytes has begun parsing it: its connection no longer counts as idle.)
 */
function serverHasRead(socket: Socket, serverPort: number): boolean {
  const clientPort = socket.localPort!;
  const lines = execFileSync('ss', ['-tnH', 'state', 'established', `( sport = :${clientPort} and dport = :${serverPort} ) or ( sport = :${serverPort} and dport = :${clientPort} )`])
    .toString()
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/));
  // Columns: Recv-Q Send-Q Local:Port Peer:Port.
  const server = lines.find((columns) => columns[2]?.endsWith(`:${serverPort}`));
  const client = lines.find((columns) => columns[2]?.endsWith(`:${clientPort}`));
  return server !== undefined && client !== undefined && server[0] === '0' && client[1] === '0';
}

/** A raw keep-alive connection: what it has received, parsed as one answer, and whether it has closed. */
async function rawConnection(port: number): Promise<{ socket: Socket; closed: boolean; answer(): { status: number; connection?: string; body: unknown } }> {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  const connection = {
    socket,
    closed: false,
    answer() {
      const [head, body] = received.split('\r\n\r\n', 2);
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(head)?.[1]);
      return { status, connection: /\r\nconnection: ([^\r]*)/i.exec(head)?.[1]?.toLowerCase(), body: body ? JSON.parse(body) : undefined };
    },
  };
  socket.on('data', (chunk) => (received += chunk));
  socket.on('close', () => (connection.closed = true));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  return connection;
}

describe('what protects the API from its callers and its operators', () => {
  let fixtures: Fixtures;

  beforeAll(async () => {
    fixtures = await Fixtures.create();
  });

  afterAll(async () => {
    await fixtures.close();
  });

  it('Prefer: wait holds at most PREFER_WAIT_MAX_WAITERS requests, and lets go of one whose client went away', async () => {
    // The API alone: the operation stays pending, so a wait can only end by its deadline or its client.
    const api = await startTestApp('api', { PREFER_WAIT_MAX_WAITERS: '1', QUEUE_PREFIX: uniqueQueuePrefix() });
    try {
      const job = await fixtures.job({ inputs: { 'a.tif': 'x' } });
      const held = holdRequest(api, downloadPath(job), job.apiKey, 60);
      await waitFor(async () => (await heldRequests(api)) === 1, 10_000, 'the first request to be held');

      // The cap is reached: the next caller is answered at once rather than held.
      const second = await api.http.put(downloadPath(job)).set('Authorization', job.apiKey).set('Prefer', 'wait=60').expect(200);
      expect(second.body.status).toBe('pending');

      held.drop();
      await waitFor(async () => (await heldRequests(api)) === 0, 5_000, 'the dropped request to be let go');
    } finally {
      await api.close();
    }
  }, 30_000);

  it('idle keep-alive connections outlast a gateway\'s reuse of them (HTTP_KEEP_ALIVE_SECONDS), on both ports', async () => {
    // Node's own default closes them after 5 s, and a gateway that reuses one then answers 502.
    const api = await startTestApp('api', { QUEUE_PREFIX: uniqueQueuePrefix() });
    const brief = await startTestApp('api', { QUEUE_PREFIX: uniqueQueuePrefix(), HTTP_KEEP_ALIVE_SECONDS: '1' });
    try {
      const kept = await Promise.all([keptOpenAfterIdle(api.baseUrl, '/healthz', 6_000), keptOpenAfterIdle(api.internal!.baseUrl, '/internal/openapi.json', 6_000)]);
      const closed = await Promise.all([keptOpenAfterIdle(brief.baseUrl, '/healthz', 3_000), keptOpenAfterIdle(brief.internal!.baseUrl, '/internal/openapi.json', 3_000)]);

      expect(kept).toEqual([true, true]);
      expect(closed).toEqual([false, false]);
    } finally {
      await brief.close();
      await api.close();
    }
  }, 30_000);

  it('on SIGTERM, the API takes no new connection, answers the requests it has while Postgres is still open, closes their connections and stops', async () => {
    // A rolling deploy: requests under way get their real answer, not a 500 from a database closed under them,
    // and a gateway's next connect is refused, so it goes to another instance.
    const [port, internalPort] = [await freePort(), await freePort()];
    const api = spawnService('api', { PORT: String(port), INTERNAL_PORT: String(internalPort), SHUTDOWN_GRACE_SECONDS: '0', QUEUE_PREFIX: uniqueQueuePrefix() });
    const sockets: Socket[] = [];
    try {
      await waitFor(() => fetch(`http://127.0.0.1:${port}/readyz`).then((response) => response.ok, () => false), 30_000, 'the API to be ready', 100);
      const job = await fixtures.job({ inputs: { 'a.tif': 'x' } });
      const request = `PUT ${downloadPath(job)} HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${job.apiKey}\r\n`;
      const held = await rawConnection(port);
      const slow = await rawConnection(port);
      sockets.push(held.socket, slow.socket);
      // No worker runs: this one waits, on a keep-alive connection, until the API stops.
      held.socket.write(`${request}Prefer: wait=15\r\n\r\n`);
      await waitFor(async () => /download_waiting_requests 1/.test(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()), 10_000, 'the request to be held');
      // This one has begun its request and not finished it, as a slow client would.
      await new Promise<void>((resolve, reject) => slow.socket.write(request, (error) => (error ? reject(error) : resolve())));
      // Its first bytes must reach the server before the signal, or the connection would count as idle.
      await waitFor(async () => serverHasRead(slow.socket, port), 10_000, 'the API to read the unfinished request');

      api.process.kill('SIGTERM');

      await waitFor(async () => held.closed, 5_000, 'the held request to be answered and its connection closed');
      expect(held.answer()).toMatchObject({ status: 200, connection: 'close', body: { status: 'pending' } });
      const refused = (somePort: number) =>
        rawConnection(somePort).then(
          (late) => (late.socket.destroy(), 'accepted'),
          (error: NodeJS.ErrnoException) => error.code,
        );
      expect([await refused(port), await refused(internalPort)]).toEqual(['ECONNREFUSED', 'ECONNREFUSED']);
      expect(api.process.exitCode).toBeNull();

      slow.socket.write('\r\n');
      await waitFor(async () => slow.closed, 5_000, 'the slow request to be answered and its connection closed');
      expect(slow.answer()).toMatchObject({ status: 200, connection: 'close', body: { status: 'pending' } });
      expect(await api.exitedCleanly()).toBe(true);
    } finally {
      for (const socket of sockets) socket.destroy();
      await api.kill('SIGKILL');
    }
  }, 60_000);

  it('a revoked key stops working on every API process without waiting out the key cache, however long keys are cached', async () => {
    const queuePrefix = uniqueQueuePrefix();
    // The operator's tools and the API processes of one deployment share its QUEUE_PREFIX, and so its channels.
    const operator = await Fixtures.create(testConfig({ QUEUE_PREFIX: queuePrefix }));
    const apis = [await startTestApp('api', { API_KEY_CACHE_SECONDS: '300', QUEUE_PREFIX: queuePrefix }), await startTestApp('api', { API_KEY_CACHE_SECONDS: '300', QUEUE_PREFIX: queuePrefix })];
    try {
      const job = await operator.job({ inputs: { 'a.tif': 'x' } });
      for (const api of apis) await api.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(200);

      // Revoked as the CLI does it: through the operator's services, which hold no Redis connection of their own.
      await operator.apiKeys.revoke(job.keyId);

      // Keys are cached for 300 s here: only the revocation's announcement can end these waits. 10 s is a
      // deadline for an announcement that never came, not a measure of how fast it comes (about a second).
      for (const api of apis) {
        await waitFor(async () => (await api.http.get(downloadPath(job)).set('Authorization', job.apiKey)).status === 401, 10_000, 'the key to be refused');
      }
    } finally {
      for (const api of apis) await api.close();
      await operator.close();
    }
  }, 30_000);

  it('a flood of distinct unknown keys does not push a caller\'s key out of the lookup cache: it still works while Postgres is away', async () => {
    const relay = await startRelay(Number(new URL(process.env.DATABASE_URL!).port || 5432));
    const viaRelay = new URL(process.env.DATABASE_URL!);
    viaRelay.port = String(relay.port);
    const api = await startTestApp('api', { DATABASE_URL: viaRelay.toString(), API_KEY_CACHE_SECONDS: '300', QUEUE_PREFIX: uniqueQueuePrefix() });
    try {
      const job = await fixtures.job({ inputs: { 'a.tif': 'x' } });
      const keys = api.app.get(ApiKeyService);
      const caller = await keys.authenticate(job.apiKey);
      // More distinct unknown keys than the cache holds (10,000), each looked up once and refused.
      const UNKNOWN_KEYS = 10_100;
      for (let sent = 0; sent < UNKNOWN_KEYS; sent += 100) {
        const answers = await Promise.allSettled(Array.from({ length: 100 }, () => keys.authenticate(`jdk_${randomBytes(32).toString('base64url')}`)));
        expect(answers.every((answer) => answer.status === 'rejected' && (answer.reason as AppError).code === 'UNAUTHENTICATED')).toBe(true);
      }

      await relay.cut();
      await expect(keys.authenticate(job.apiKey)).resolves.toEqual(caller);
    } finally {
      await relay.restore();
      await api.close();
      await relay.cut();
    }
  }, 120_000);

  it('a production role on a database without the schema says so at boot and in /readyz, answers 503 meanwhile, and is ready once migrated', async () => {
    const name = uniqueId('jdtest_schema').replaceAll('-', '_');
    const databaseUrl = new URL(process.env.DATABASE_URL!);
    databaseUrl.pathname = `/${name}`;
    await ensureDatabase(databaseUrl.toString());
    const port = await freePort();
    const api = spawnService('api', { DATABASE_URL: databaseUrl.toString(), PORT: String(port), INTERNAL_PORT: String(await freePort()), LOG_LEVEL: 'info', QUEUE_PREFIX: uniqueQueuePrefix() });
    try {
      await waitFor(async () => api.output().includes('migration(s) pending'), 30_000, 'the boot message');
      expect(api.output()).toContain('apply them with `node dist/migrate.js`');

      const readiness = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(readiness.status).toBe(503);
      const { error } = (await readiness.json()) as { error: { details: Array<{ field: string; message: string }> } };
      expect(error.details).toContainEqual({ field: 'schema', message: expect.stringContaining('node dist/migrate.js') });
      const answer = await fetch(`http://127.0.0.1:${port}/v0/workflows/wf/jobs/job/download`, { method: 'PUT', headers: { Authorization: 'jdk_anything' } });
      expect(answer.status).toBe(503);
      expect(await answer.json()).toEqual({ error: { code: 'SERVICE_UNAVAILABLE', message: 'the service is not ready: its database migrations are pending', details: [] } });

      await migrate(databaseUrl.toString());

      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, 15_000, 'readiness once migrated');
    } finally {
      await api.kill('SIGKILL');
      await dropDatabase(name);
    }
  }, 60_000);

  it('boot messages say what to do: an unreachable dependency without a stack, a demo it cannot seed, a missing WEBHOOK_SECRET_KEY or an example token as warnings', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'jd-boot-'));
    const ports = { PORT: String(await freePort()), INTERNAL_PORT: String(await freePort()) };
    // The all-in-one creates and migrates its database first: nothing answers on port 1.
    const allInOne = spawnService('all', { ...ports, S3_ENDPOINT: '', EMBEDDED_S3_PORT: String(await freePort()), DATA_DIR: dataDir, DATABASE_URL: 'postgresql://postgres:postgres@127.0.0.1:1/job_downloads' });
    // A demo it could not seed: its files would go where no registration may read them.
    const noDemo = spawnService('all', { ...ports, S3_ENDPOINT: '', DATA_DIR: dataDir, DEMO_SEED: 'true', ASSET_BUCKETS: 'customer-assets' });
    const api = spawnService('api', { ...ports, WEBHOOK_SECRET_KEY: '', INTERNAL_API_TOKEN: 'change-me-catalogue-token', LOG_LEVEL: 'info', QUEUE_PREFIX: uniqueQueuePrefix() });
    try {
      expect(await noDemo.exited).toBe(1);
      expect(noDemo.output()).toContain('S3_ASSETS_BUCKET (test-assets), which must be one of ASSET_BUCKETS (customer-assets); or set DEMO_SEED=false');
      expect(await allInOne.exited).toBe(1);
      expect(allInOne.output()).toContain('startup failed: a dependency could not be reached (check DATABASE_URL, REDIS_URL, S3_ENDPOINT): connect ECONNREFUSED 127.0.0.1:1');
      expect(allInOne.output()).not.toMatch(/^\s+at /m);
      await waitFor(async () => api.output().includes('WEBHOOK_SECRET_KEY is not set: webhook endpoints cannot be created, and no webhook is delivered'), 30_000, 'the warning');
      expect(api.output()).toContain("INTERNAL_API_TOKEN is docker-compose.yml's example value, which anyone can read: set your own beyond a local trial");
    } finally {
      await allInOne.kill('SIGKILL');
      await noDemo.kill('SIGKILL');
      await api.kill('SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('the compose roles share one WEBHOOK_SECRET_KEY of at least 32 characters', () => {
    const compose = readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8');
    const serviceEnv = compose.slice(compose.indexOf('x-service-env:'), compose.indexOf('x-app:'));
    expect(serviceEnv).toMatch(/^ {2}WEBHOOK_SECRET_KEY: \$\{WEBHOOK_SECRET_KEY:-[^}]{32,}\}$/m);
  });

  it("the compose gateway answers 404 for /metrics and /readyz, and proxies no other port", () => {
    const gateway = readFileSync(new URL('../docker/nginx.conf', import.meta.url), 'utf8');
    const compose = readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8');

    // The location's own regular expression, case-insensitive as `~*` makes it, over what the api answers as
    // those routes (nginx has merged doubled slashes and decoded the path before it matches).
    const [, flag, pattern] = /location (~\*?) (\S+) \{[^}]*return 404/.exec(gateway)!;
    const blocked = new RegExp(pattern, flag === '~*' ? 'i' : '');
    for (const path of ['/metrics', '/metrics/', '/METRICS', '/Metrics//', '/readyz', '/readyz/', '/READYZ']) expect(`${path} ${blocked.test(path)}`).toBe(`${path} true`);
    for (const path of ['/healthz', '/v0/workflows/metrics/jobs/readyz/download', '/docs', '/metricsx']) expect(`${path} ${blocked.test(path)}`).toBe(`${path} false`);
    expect(gateway.match(/proxy_pass \S+/g)).toEqual(['proxy_pass $api_upstream;']);
    expect(gateway).toContain('set $api_upstream http://api:3000;');
    expect(compose.slice(compose.indexOf('\n  gateway:'))).toContain('"${GATEWAY_PORT:-3000}:80"');
  });
});
