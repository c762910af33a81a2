import { downloadPath, Fixtures, startTestApp, type TestApp } from './support/harness.js';
import { waitFor } from './support/processes.js';

describe('operational endpoints', () => {
  let fixtures: Fixtures;
  let api: TestApp;

  beforeAll(async () => {
    fixtures = await Fixtures.create();
    api = await startTestApp('api');
  });

  afterAll(async () => {
    await api.close();
    await fixtures.close();
  });

  describe('the OpenAPI document at /openapi.json', () => {
    let document: any;
    const path = '/v0/workflows/{workflow_id}/jobs/{job_id}/download';

    beforeAll(async () => {
      document = (await api.http.get('/openapi.json').expect(200).expect('Content-Type', /json/)).body;
    });

    it('describes PUT, GET and DELETE on the download path with the workflow_id and job_id parameters', () => {
      expect(Object.keys(document.paths[path]).sort()).toEqual(['delete', 'get', 'put']);
      for (const method of ['put', 'get', 'delete']) {
        const parameters = document.paths[path][method].parameters.filter((p: any) => p.in === 'path');
        expect(parameters.map((p: any) => p.name).sort()).toEqual(['job_id', 'workflow_id']);
        for (const parameter of parameters) {
          expect(parameter.required).toBe(true);
          expect(parameter.schema.pattern).toBe('^[A-Za-z0-9_-]{1,64}$');
        }
      }
    });

    it('documents the 200 body with the four upstream fields and the extras', () => {
      const ok = document.paths[path].put.responses['200'];
      const schema = document.components.schemas[ok.content['application/json'].schema.$ref.split('/').at(-1)];
      expect(Object.keys(schema.properties).slice(0, 4)).toEqual(['id', 'status', 'signed_url', 'workflowId']);
      expect(schema.required).toEqual(expect.arrayContaining(['id', 'status', 'signed_url', 'workflowId']));
      expect(schema.properties.status.enum).toEqual(['pending', 'ready', 'failed', 'expired', 'cancelled']);
      expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['job_id', 'progress', 'size_bytes', 'sha256', 'expires_at', 'error']));
      expect(ok.headers['Retry-After']).toBeDefined();
    });

    it('documents the error envelope for every error status', () => {
      const responses = document.paths[path].put.responses;
      for (const status of ['400', '401', '403', '404', '409', '429', '503']) {
        expect(responses[status].content['application/json'].schema.$ref).toBe('#/components/schemas/ErrorEnvelopeDto');
      }
      expect(responses['429'].headers['Retry-After']).toBeDefined();
      const envelope = document.components.schemas.ErrorEnvelopeDto;
      expect(envelope.properties.error.$ref ?? envelope.properties.error.allOf?.[0].$ref).toBe('#/components/schemas/ErrorBodyDto');
      expect(Object.keys(document.components.schemas.ErrorBodyDto.properties)).toEqual(['code', 'message', 'details']);
      // Every code an answer can carry: a client that validates answers against the document accepts each one.
      expect(document.components.schemas.ErrorBodyDto.properties.code.enum).toEqual(expect.arrayContaining([
        'INVALID_PARAMETER', 'INVALID_REQUEST', 'INVALID_SOURCE', 'UNAUTHENTICATED', 'FORBIDDEN', 'NOT_FOUND', 'CONFLICT', 'JOB_NOT_FINISHED',
        'PAYLOAD_TOO_LARGE', 'HEADERS_TOO_LARGE', 'RATE_LIMITED', 'INTERNAL', 'SERVICE_UNAVAILABLE',
      ]));
      // One 409 code for the job and the task endpoint alike, as the contract's table has it.
      expect(document.components.schemas.ErrorBodyDto.properties.code.enum).not.toContain('TASK_NOT_FINISHED');
    });

    it('declares the API-key scheme on the Authorization header and the Prefer header', () => {
      expect(document.components.securitySchemes['api-key']).toMatchObject({ type: 'apiKey', in: 'header', name: 'Authorization' });
      expect(document.paths[path].put.security).toEqual([{ 'api-key': [] }]);
      // Optional, and listed once: a required `prefer` beside it would make Swagger UI and generated clients
      // demand a value.
      for (const route of [path, `${path.replace('/download', '')}/tasks/{task_id}/download`]) {
        const headers = document.paths[route].put.parameters.filter((p: any) => p.in === 'header' && p.name.toLowerCase() === 'prefer');
        expect(headers).toEqual([expect.objectContaining({ name: 'Prefer', required: false })]);
      }
    });

    it('lists 409 for PUT and DELETE only: a GET shows an unfinished job as it is', () => {
      expect(Object.keys(document.paths[path].put.responses)).toContain('409');
      expect(Object.keys(document.paths[path].delete.responses)).toContain('409');
      expect(Object.keys(document.paths[path].get.responses)).not.toContain('409');
    });

    it('describes /healthz and /readyz under "operations", with the envelope on 503, and leaves /metrics out', () => {
      expect(document.paths['/healthz'].get).toMatchObject({ tags: ['operations'], summary: expect.stringContaining('Liveness') });
      const readyz = document.paths['/readyz'].get;
      expect(readyz).toMatchObject({ tags: ['operations'], summary: expect.stringContaining('Readiness') });
      expect(readyz.responses['200'].content['application/json'].schema.example).toMatchObject({ status: 'ok' });
      expect(readyz.responses['503'].content['application/json'].schema.$ref).toBe('#/components/schemas/ErrorEnvelopeDto');
      expect(document.paths['/metrics']).toBeUndefined();
      // No other tag slipped in, and no route is described twice (the API may build its document more than once).
      expect(readyz.tags).toHaveLength(1);
    });

    it('serves Swagger UI at /docs', async () => {
      const response = await api.http.get('/docs').redirects(1).expect(200);
      expect(response.text).toContain('swagger-ui');
    });
  });

  it('/healthz answers without a key', async () => {
    await api.http.get('/healthz').expect(200, { status: 'ok' });
  });

  it('/readyz reports Postgres, Redis and S3 up', async () => {
    // Each check has 2.5 s: the suite's shared s3rver, busy assembling another file's 1 GiB upload, can miss that
    // once. Readiness is a probe that is asked again; what matters is that it reports every dependency up.
    const body = await waitFor(async () => {
      const answer = await api.http.get('/readyz');
      return answer.status === 200 ? answer.body : undefined;
    }, 20_000, '/readyz to answer 200', 500);
    expect(body).toMatchObject({ status: 'ok', info: { postgres: { status: 'up' }, redis: { status: 'up' }, s3: { status: 'up' } } });
  });

  it('/readyz names the dependency that is down, with the envelope and 503', async () => {
    const broken = await startTestApp('api', { REDIS_URL: 'redis://127.0.0.1:1' });
    try {
      const { body } = await broken.http.get('/readyz').expect(503);
      expect(body.error.code).toBe('SERVICE_UNAVAILABLE');
      expect(body.error.message).toMatch(/^not ready: (.+, )?redis(, .+)? unavailable$/);
      // The shared s3rver, busy with another file's upload, may miss its check too.
      expect(body.error.details).toContainEqual({ field: 'redis', message: 'redis does not answer' });
    } finally {
      await broken.close();
    }
  });

  it('echoes the gateway request id, or makes one', async () => {
    const given = await api.http.get('/healthz').set('X-Request-Id', 'gw-1234').expect(200);
    const made = await api.http.get('/healthz').expect(200);
    const hostile = await api.http.get('/healthz').set('X-Request-Id', 'x'.repeat(500)).expect(200);

    expect(given.headers['x-request-id']).toBe('gw-1234');
    expect(made.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(hostile.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('/metrics exposes requests by route and status, queue depth and operations by status', async () => {
    const job = await fixtures.job({ inputs: { 'a.tif': 'x' } });
    await api.http.put(downloadPath(job)).set('Authorization', job.apiKey).expect(200);
    await api.http.put(downloadPath(job)).expect(401);

    const { text, headers } = await api.http.get('/metrics').expect(200);

    expect(headers['content-type']).toContain('text/plain');
    expect(text).toContain('http_requests_total{method="PUT",route="/v0/workflows/:workflow_id/jobs/:job_id/download",status="200"} 1');
    expect(text).toContain('http_requests_total{method="PUT",route="/v0/workflows/:workflow_id/jobs/:job_id/download",status="401"} 1');
    expect(text).toMatch(/http_request_duration_seconds_bucket\{le="0.005",method="PUT"/);
    expect(text).toMatch(/packaging_queue_jobs\{state="in_line"\} [1-9]/);
    for (const state of ['active', 'delayed', 'failed']) expect(text).toContain(`packaging_queue_jobs{state="${state}"}`);
    expect(text).toMatch(/download_operations\{status="pending"\} [1-9]/);
    for (const name of ['packaging_builds_total', 'packaging_duration_seconds', 'packaging_source_bytes_total', 'packaging_archive_bytes_total', 'process_resident_memory_bytes']) {
      expect(text).toContain(`# TYPE ${name}`);
    }
  });

  it('the worker role serves health and metrics on its own port, and no API', async () => {
    const worker = await startTestApp('worker');
    try {
      await worker.http.get('/healthz').expect(200);
      // Asked again while the shared s3rver is busy with another file's upload, as /readyz is above.
      await waitFor(async () => (await worker.http.get('/readyz')).status === 200, 20_000, "the worker's /readyz to answer 200", 500);
      const { text } = await worker.http.get('/metrics').expect(200);
      expect(text).toContain('# TYPE packaging_builds_total counter');
      await worker.http.put('/v0/workflows/w/jobs/j/download').expect(404);
    } finally {
      await worker.close();
    }
  });
});
