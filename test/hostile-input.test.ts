import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { downloadPath, Fixtures, startTestApp, type SeededJob, type TestApp } from './support/harness.js';

/** A small seeded PRNG (mulberry32): every run sends the same "random" requests, so a failure reproduces. */
function prng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function send(port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port, method, path, headers, agent: false }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }));
    });
    request.on('error', reject);
    if (body !== undefined) request.write(body);
    request.end();
  });
}

function sendRaw(port: number, bytes: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(bytes));
    let text = '';
    socket.on('data', (chunk) => (text += chunk.toString('latin1')));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

describe('hostile input', () => {
  let fixtures: Fixtures;
  let api: TestApp;
  let job: SeededJob;
  let port: number;

  beforeAll(async () => {
    fixtures = await Fixtures.create();
    api = await startTestApp('api', { RATE_LIMIT_PER_MINUTE: '100000', PREFER_WAIT_MAX_SECONDS: '1' });
    port = Number(new URL(api.baseUrl).port);
    job = await fixtures.job({ inputs: { 'a.tif': 'x' } });
  });

  afterAll(async () => {
    await api.close();
    await fixtures.close();
  });

  it('answers 3,000 randomised malformed requests without a single 5xx, each error in the envelope', async () => {
    const random = prng(20261129);
    const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];
    const junk = (length: number) => Array.from({ length }, () => String.fromCharCode(33 + Math.floor(random() * 94))).join('');
    const segments = () =>
      pick([
        job.workflowId, job.jobId, 'ok-id', '', '.', '..', '%2e%2e', '%2F', '%00', '%ZZ', '%E0%A4%A', '%C3%A9', '%F0%9F%98%80', '%FF%FE', 'a'.repeat(65),
        'x'.repeat(2000), encodeURIComponent(junk(12)), 'id;drop', 'id%20space', '%25', '\\', '%5C..%5C',
      ]);
    const paths = () =>
      pick([
        () => `/v0/workflows/${segments()}/jobs/${segments()}/download`,
        () => `/v0/workflows/${segments()}/jobs/${segments()}/download?${junk(8)}=${junk(8)}`,
        () => `/v0/workflows/${segments()}/jobs/${segments()}`,
        () => `/v0//workflows/${segments()}/jobs/${segments()}/download/`,
        () => `/${segments()}`,
        () => `/v0/workflows/${job.workflowId}/jobs/${job.jobId}/download/..%2f..%2f`,
        () => `/docs/${segments()}`,
        () => `/readyz/${segments()}`,
      ])();
    const authorizations = [job.apiKey, `Bearer ${job.apiKey}`, `bearer  ${job.apiKey}`, 'Bearer', 'Basic Zm9vOmJhcg==', '', 'null', 'jdk_' + 'A'.repeat(43), junk(300), `Bearer ${job.apiKey} extra`, 'x'.repeat(4000)];
    const prefers = ['wait=1', 'wait=-5', 'wait=99999999999', 'wait=abc', 'wait', 'respond-async, wait=0', ',,,,', 'wait=1;x', junk(50)];
    const methods = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'PROPFIND', 'TRACE'];
    const bodies = [undefined, '{"a":1}', '{bad json', '[]', 'null', junk(100), 'x'.repeat(20_000)];

    const answers: Array<{ request: string; answer: RawAnswer }> = [];
    for (let batch = 0; batch < 60; batch++) {
      const requests = Array.from({ length: 50 }, () => {
        const method = pick(methods);
        const path = paths();
        const headers: Record<string, string> = {};
        if (random() < 0.8) headers.authorization = pick(authorizations);
        if (random() < 0.4) headers.prefer = pick(prefers);
        if (random() < 0.3) headers['x-request-id'] = junk(Math.floor(random() * 200));
        const body = ['PUT', 'POST', 'PATCH'].includes(method) ? pick(bodies) : undefined;
        if (body !== undefined) headers['content-type'] = pick(['application/json', 'text/plain', 'application/json; charset=latin1']);
        return { method, path, headers, body };
      });
      const settled = await Promise.all(
        requests.map(async (r) => ({ request: `${r.method} ${r.path.slice(0, 120)}`, answer: await send(port, r.method, r.path, r.headers, r.body) })),
      );
      answers.push(...settled);
    }

    expect(answers).toHaveLength(3_000);
    const serverErrors = answers.filter(({ answer }) => answer.status >= 500);
    expect(serverErrors.map(({ request, answer }) => `${answer.status} ${request}`)).toEqual([]);
    for (const { request, answer } of answers) {
      expect(answer.headers['x-content-type-options']).toBe('nosniff');
      if (answer.status < 400 || request.startsWith('HEAD')) continue;
      const body = JSON.parse(answer.body);
      expect(Object.keys(body)).toEqual(['error']);
      expect(Object.keys(body.error)).toEqual(['code', 'message', 'details']);
      expect(answer.body).not.toMatch(/at .*\.(js|ts):\d+|prisma|ECONNREFUSED|SELECT /i);
    }
    const codes = new Set(answers.map(({ answer }) => answer.status));
    expect([...codes].filter((status) => ![200, 301, 400, 401, 403, 404, 409, 413, 429, 431].includes(status))).toEqual([]);
    await api.http.get('/healthz').expect(200);
  }, 120_000);

  it('answers oversized headers with 431 and a malformed request line with 400, in the envelope', async () => {
    const oversized = await sendRaw(port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`);
    const garbage = await sendRaw(port, 'THIS IS NOT HTTP\r\n\r\n');
    const badHeader = await sendRaw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n');
    // Raw UTF-8 bytes in the path, which well-behaved clients would have percent-encoded.
    const rawBytes = await sendRaw(port, Buffer.concat([Buffer.from('PUT /v0/workflows/'), Buffer.from('été😀', 'utf8'), Buffer.from(`/jobs/j/download HTTP/1.1\r\nHost: x\r\nAuthorization: ${job.apiKey}\r\nConnection: close\r\n\r\n`)]));

    expect(oversized).toMatch(/^HTTP\/1\.1 431 /);
    for (const answer of [oversized, garbage, badHeader, rawBytes]) expect(answer).toMatch(/\r\nX-Content-Type-Options: nosniff\r\n/i);
    expect(JSON.parse(oversized.split('\r\n\r\n')[1])).toEqual({ error: { code: 'HEADERS_TOO_LARGE', message: 'the request headers are too large', details: [] } });
    for (const answer of [garbage, badHeader]) {
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      expect(JSON.parse(answer.split('\r\n\r\n')[1]).error.code).toBe('INVALID_REQUEST');
    }
    expect(rawBytes).toMatch(/^HTTP\/1\.1 (400|404) /);
    expect(JSON.parse(rawBytes.split('\r\n\r\n')[1]).error.code).toMatch(/^(INVALID_PARAMETER|INVALID_REQUEST|NOT_FOUND)$/);
    await api.http.get('/healthz').expect(200);
  });

  it('answers what Node would answer bare in the envelope: no Host, an unknown Expect, CONNECT', async () => {
    const noHost = await sendRaw(port, `PUT ${downloadPath(job)} HTTP/1.1\r\nAuthorization: ${job.apiKey}\r\nConnection: close\r\n\r\n`);
    const expectation = await sendRaw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nConnection: close\r\n\r\n');
    const tunnel = await sendRaw(port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    const bodyOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n|\r\n0\r\n\r\n$/g, ''));

    expect(noHost).toMatch(/^HTTP\/1\.1 400 /);
    expect(bodyOf(noHost)).toEqual({ error: { code: 'INVALID_REQUEST', message: 'the request has no Host header', details: [] } });
    expect(expectation).toMatch(/^HTTP\/1\.1 417 /);
    expect(bodyOf(expectation).error.code).toBe('INVALID_REQUEST');
    expect(tunnel).toMatch(/^HTTP\/1\.1 404 /);
    expect(bodyOf(tunnel)).toEqual({ error: { code: 'NOT_FOUND', message: 'no such resource', details: [] } });
    for (const answer of [noHost, expectation, tunnel]) expect(answer).toMatch(/\r\nX-Content-Type-Options: nosniff\r\n/i);
    // HTTP/1.0 has no Host to require.
    expect(await sendRaw(port, 'GET /healthz HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('caps Prefer: wait at the configured maximum', async () => {
    // Capped at 1 s (PREFER_WAIT_MAX_SECONDS): uncapped, the request would be held for an hour. The 30 s is a
    // deadline for a request held far past the cap, not a measure of the cap.
    const response = await api.http.put(downloadPath(job)).set('Authorization', job.apiKey).set('Prefer', 'wait=3600').timeout(30_000).expect(200);
    expect(response.body.status).toBe('pending');
  });
});
