import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { hashApiKey } from '../src/catalogue/api-key.service.js';
import { ensureDatabase, migrate } from '../src/platform/prisma/migrator.js';
import { Fixtures, uniqueId } from './support/harness.js';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI as an operator would, against this run's database and S3. */
function cli(...args: string[]): Promise<CliResult> {
  return cliWith({}, ...args);
}

function cliWith(env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A successful command prints exactly one JSON document on stdout and nothing on stderr. */
async function ok(...args: string[]): Promise<any> {
  const result = await cli(...args);
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  return JSON.parse(result.stdout);
}

/** A failed command exits non-zero with one line of JSON on stderr and nothing on stdout. */
async function fails(...args: string[]): Promise<{ code: string; message: string }> {
  return failsWith({}, ...args);
}

async function failsWith(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: string; message: string }> {
  const result = await cliWith(env, ...args);
  expect(result.code).not.toBe(0);
  expect(result.stdout).toBe('');
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  return JSON.parse(result.stderr).error;
}

describe('the operator CLI', () => {
  let fixtures: Fixtures;

  beforeAll(async () => {
    fixtures = await Fixtures.create();
  });

  afterAll(async () => {
    await fixtures.close();
  });

  it('creates an organisation', async () => {
    const organisation = await ok('org', 'create', 'Acme Imaging');

    expect(organisation.id).toMatch(/^[0-9a-f-]{36}$/);
    const stored = await fixtures.prisma.organisation.findUniqueOrThrow({ where: { id: organisation.id } });
    expect(stored.name).toBe('Acme Imaging');
  });

  it('creates an API key, shown once and stored only as its SHA-256', async () => {
    const { id: orgId } = await ok('org', 'create', 'keys');

    const created = await ok('apikey', 'create', '--org', orgId, '--name', 'ci');

    expect(created.key).toMatch(/^jdk_[A-Za-z0-9_-]{43}$/);
    const stored = await fixtures.prisma.apiKey.findUniqueOrThrow({ where: { id: created.id } });
    expect(stored).toMatchObject({ organisationId: orgId, name: 'ci', hash: hashApiKey(created.key), revokedAt: null });
    expect(created.key.startsWith(stored.prefix)).toBe(true);
    expect(JSON.stringify(stored)).not.toContain(created.key);
  });

  it('issues a different key every time', async () => {
    const { id: orgId } = await ok('org', 'create', 'entropy');
    const keys = await Promise.all([1, 2, 3].map(() => ok('apikey', 'create', '--org', orgId)));
    expect(new Set(keys.map((k) => k.key)).size).toBe(3);
  });

  it('revokes a key', async () => {
    const { id: orgId } = await ok('org', 'create', 'revoke');
    const { id } = await ok('apikey', 'create', '--org', orgId);

    const revoked = await ok('apikey', 'revoke', id);

    expect(revoked.id).toBe(id);
    expect(new Date(revoked.revoked_at).getTime()).toBeGreaterThan(Date.now() - 60_000);
    const stored = await fixtures.prisma.apiKey.findUniqueOrThrow({ where: { id } });
    expect(stored.revokedAt?.toISOString()).toBe(revoked.revoked_at);
  });

  it('registers a job with default asset locations and creates its workflow', async () => {
    const { id: orgId } = await ok('org', 'create', 'jobs');
    const workflowId = uniqueId('wf');

    const job = await ok('job', 'register', '--org', orgId, '--workflow', workflowId, '--job', 'job-1');

    expect(job).toMatchObject({
      workflow_id: workflowId,
      job_id: 'job-1',
      status: 'completed',
      inputs: [`s3://test-assets/workflows/${workflowId}/jobs/job-1/inputs/`],
      outputs: [`s3://test-assets/workflows/${workflowId}/jobs/job-1/outputs/`],
      tasks: [],
    });
    const workflow = await fixtures.prisma.workflow.findUniqueOrThrow({ where: { id: workflowId } });
    expect(workflow.organisationId).toBe(orgId);
  });

  it('takes the organisation id in upper case, for a new workflow and again for the same one', async () => {
    const { id: orgId } = await ok('org', 'create', 'shouting');
    const workflowId = uniqueId('wf');

    const first = await ok('job', 'register', '--org', orgId.toUpperCase(), '--workflow', workflowId, '--job', 'a');
    const second = await ok('job', 'register', '--org', orgId.toUpperCase(), '--workflow', workflowId, '--job', 'b');

    expect(first).toMatchObject({ workflow_id: workflowId, job_id: 'a', organisation_id: orgId });
    expect(second).toMatchObject({ workflow_id: workflowId, job_id: 'b', organisation_id: orgId });
  });

  it('registers a job with explicit status and several sources per side, prefixes and single objects, in order', async () => {
    const { id: orgId } = await ok('org', 'create', 'explicit');
    const workflowId = uniqueId('wf');

    const job = await ok(
      'job', 'register', '--org', orgId, '--workflow', workflowId, '--job', 'j2', '--status', 'running',
      '--inputs', 's3://test-assets/raw/scenes/2026', '--inputs', 's3://test-assets/aux/dem.tif', '--outputs', 's3://test-assets/products/',
    );

    expect(job).toMatchObject({ status: 'running', inputs: ['s3://test-assets/raw/scenes/2026', 's3://test-assets/aux/dem.tif'], outputs: ['s3://test-assets/products/'], finished_at: null });
  });

  it('refuses sources outside ASSET_BUCKETS or under the packages\' prefix, naming each, and registers nothing', async () => {
    const { id: orgId } = await ok('org', 'create', 'rules');
    const workflowId = uniqueId('wf');

    const error = await fails(
      'job', 'register', '--org', orgId, '--workflow', workflowId, '--job', 'j',
      '--inputs', 's3://test-assets/fine/', '--inputs', 's3://elsewhere/x/', '--outputs', 's3://test-packages/packages/a/',
    );

    expect(error).toEqual({
      code: 'INVALID_SOURCE',
      message: 'invalid sources: inputs[1], outputs[0]',
      details: [
        { field: 'inputs[1]', message: 'bucket "elsewhere" is not one of ASSET_BUCKETS (test-assets)' },
        { field: 'outputs[0]', message: 'bucket "test-packages" is not one of ASSET_BUCKETS (test-assets)' },
      ],
    });
    expect(await fixtures.prisma.job.count({ where: { workflowId } })).toBe(0);
    // Even where the packages' bucket also holds assets, its packages/ prefix is never a source.
    const packagesToo = await cliWith({ ASSET_BUCKETS: 'test-assets,test-packages' }, 'job', 'register', '--org', orgId, '--workflow', workflowId, '--job', 'j', '--outputs', 's3://test-packages/packages/a/', '--outputs', 's3://test-packages/');
    expect(packagesToo.code).toBe(2);
    expect(JSON.parse(packagesToo.stderr).error.details).toEqual([
      { field: 'outputs[0]', message: "must not be under the packages' own prefix s3://test-packages/packages/" },
      { field: 'outputs[1]', message: "must not be under the packages' own prefix s3://test-packages/packages/" },
    ]);
  });

  it("refuses to register a job in another organisation's workflow", async () => {
    const { id: owner } = await ok('org', 'create', 'owner');
    const { id: intruder } = await ok('org', 'create', 'intruder');
    const workflowId = uniqueId('wf');
    await ok('job', 'register', '--org', owner, '--workflow', workflowId, '--job', 'a');

    const error = await fails('job', 'register', '--org', intruder, '--workflow', workflowId, '--job', 'b');

    expect(error.code).toBe('FORBIDDEN');
    expect(await fixtures.prisma.job.count({ where: { workflowId } })).toBe(1);
  });

  it('lists operations newest first with snake_case fields, filtered by status', async () => {
    const { id: orgId } = await ok('org', 'create', 'ops');
    const workflowId = uniqueId('wf');
    await ok('job', 'register', '--org', orgId, '--workflow', workflowId, '--job', 'a');
    await ok('job', 'register', '--org', orgId, '--workflow', workflowId, '--job', 'b');
    await ok('job', 'register', '--org', orgId, '--workflow', workflowId, '--job', 'c');
    // A day ahead: other suites record failed operations in the same database while this one runs.
    const tomorrow = Date.now() + 86_400_000;
    const older = await fixtures.prisma.downloadOperation.create({ data: { workflowId, jobId: 'a', status: 'failed', errorCode: 'NO_ASSETS', createdAt: new Date(tomorrow) } });
    const newer = await fixtures.prisma.downloadOperation.create({ data: { workflowId, jobId: 'b', status: 'failed', createdAt: new Date(tomorrow + 1_000) } });
    // The newest of all, and not failed: the filter must leave it out.
    const cancelled = await fixtures.prisma.downloadOperation.create({ data: { workflowId, jobId: 'c', status: 'cancelled', createdAt: new Date(tomorrow + 2_000) } });

    const listed = await ok('operations', 'list', '--status', 'failed', '--limit', '2');

    expect(listed.map((operation: { id: string }) => operation.id)).toEqual([newer.id, older.id]);
    expect(listed.map((operation: { id: string }) => operation.id)).not.toContain(cancelled.id);
    expect(listed[1]).toMatchObject({
      id: older.id,
      workflow_id: workflowId,
      job_id: 'a',
      status: 'failed',
      attempts: 0,
      size_bytes: null,
      error_code: 'NO_ASSETS',
      ready_at: null,
    });
    expect(listed[1].created_at).toBe(older.createdAt.toISOString());
  });

  it.concurrent.each([
    [['nonsense'], 'INVALID_ARGUMENT', 'unknown command'],
    [['org', 'create'], 'INVALID_ARGUMENT', 'organisation name is required'],
    [['apikey', 'create'], 'INVALID_ARGUMENT', '--org is required'],
    [['apikey', 'create', '--org', '00000000-0000-0000-0000-000000000000'], 'NOT_FOUND', 'no organisation'],
    [['apikey', 'create', '--org', 'not-a-uuid'], 'NOT_FOUND', 'no organisation'],
    [['apikey', 'revoke', '00000000-0000-0000-0000-000000000000'], 'NOT_FOUND', 'no API key'],
    [['apikey', 'revoke', 'garbage'], 'NOT_FOUND', 'no API key'],
    [['job', 'register', '--org', '00000000-0000-0000-0000-000000000000', '--workflow', 'bad/id', '--job', 'j'], 'INVALID_ARGUMENT', '--workflow must be'],
    [['job', 'register', '--org', '00000000-0000-0000-0000-000000000000', '--workflow', 'w', '--job', 'j', '--status', 'done'], 'INVALID_ARGUMENT', '--status must be one of'],
    [['job', 'register', '--org', '00000000-0000-0000-0000-000000000000', '--workflow', 'w', '--job', 'j', '--inputs', 'http://x'], 'NOT_FOUND', 'no organisation'],
    [['operations', 'list', '--status', 'done'], 'INVALID_ARGUMENT', '--status must be one of'],
    [['operations', 'list', '--limit', 'ten'], 'INVALID_ARGUMENT', '--limit must be a positive integer'],
    [['operations', 'list', '--limit', '0'], 'INVALID_ARGUMENT', '--limit must be an integer from 1 to 1000'],
    [['webhook', 'deliveries', '--org', '00000000-0000-0000-0000-000000000000', '--limit', '0'], 'INVALID_ARGUMENT', '--limit must be an integer from 1 to 1000'],
    [['webhook', 'deliveries', '--org', '00000000-0000-0000-0000-000000000000', '--limit', '1001'], 'INVALID_ARGUMENT', '--limit must be an integer from 1 to 1000'],
    [['operations', 'list', '--bogus', '1'], 'INVALID_ARGUMENT', "Unknown option '--bogus'"],
  ])('answers %j with %s on stderr', async (args, code, message) => {
    const error = await fails(...args);
    expect(error.code).toBe(code);
    expect(error.message).toContain(message);
  });

  it('refuses words and flags a command does not take, and empty flags, before connecting to anything', async () => {
    // Nothing answers on port 1: a refusal that needed Postgres would say SERVICE_UNAVAILABLE instead.
    const nowhere = { DATABASE_URL: 'postgresql://postgres:postgres@127.0.0.1:1/job_downloads' };
    expect(await failsWith(nowhere, 'org', 'create', 'Acme', 'Corp')).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('unexpected argument "Corp" for org create') });
    expect(await failsWith(nowhere, 'operations', 'list', 'failed')).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('unexpected argument "failed"') });
    expect(await failsWith(nowhere, 'operations', 'list', '--org', 'acme')).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('--org does not apply to operations list') });
    expect(await failsWith(nowhere, 'apikey', 'create', '--org', 'acme', '--name', '')).toEqual({ code: 'INVALID_ARGUMENT', message: '--name must not be empty' });
    expect(await failsWith(nowhere, 'demo', 'now')).toMatchObject({ code: 'INVALID_ARGUMENT' });
    // The demo's files would go where no registration may read them: refused before the organisation and key.
    expect(await failsWith({ ...nowhere, ASSET_BUCKETS: 'customer-assets' }, 'demo')).toEqual({
      code: 'INVALID_ARGUMENT',
      message: 'the demo puts its files in S3_ASSETS_BUCKET (test-assets), which must be one of ASSET_BUCKETS (customer-assets)',
    });
  });

  it('says SERVICE_UNAVAILABLE with the cause when Postgres cannot be reached, and exits 1', async () => {
    const result = await cliWith({ DATABASE_URL: 'postgresql://postgres:postgres@127.0.0.1:1/job_downloads' }, 'org', 'create', 'acme');
    expect({ code: result.code, stdout: result.stdout, lines: result.stderr.trim().split('\n').length }).toEqual({ code: 1, stdout: '', lines: 1 });
    expect(JSON.parse(result.stderr).error).toEqual({ code: 'SERVICE_UNAVAILABLE', message: expect.stringMatching(/^a dependency could not be reached: .*127\.0\.0\.1:1/) });
  });

  it('keeps stderr to its one line when pg warns about sslmode=require in DATABASE_URL', async () => {
    const error = await failsWith({ DATABASE_URL: 'postgresql://postgres:postgres@127.0.0.1:1/job_downloads?sslmode=require' }, 'operations', 'list');
    expect(error.code).toBe('SERVICE_UNAVAILABLE');
  });

  it('says SERVICE_UNAVAILABLE, naming the migrations, when the database does not exist yet', async () => {
    const missing = new URL(process.env.DATABASE_URL!);
    missing.pathname = `/${uniqueId('jdtest_missing').replaceAll('-', '_')}`;
    const error = await failsWith({ DATABASE_URL: missing.toString() }, 'operations', 'list');
    expect(error).toEqual({ code: 'SERVICE_UNAVAILABLE', message: expect.stringContaining('node dist/migrate.js') });
  });

  it('refuses a flag given twice, rather than taking the last one', async () => {
    const nowhere = { DATABASE_URL: 'postgresql://postgres:postgres@127.0.0.1:1/job_downloads' };
    expect(await failsWith(nowhere, 'apikey', 'create', '--org', 'a', '--org', 'b')).toEqual({ code: 'INVALID_ARGUMENT', message: '--org is given more than once' });
    expect(await failsWith(nowhere, 'operations', 'list', '--status', 'failed', '--status', 'ready')).toEqual({ code: 'INVALID_ARGUMENT', message: '--status is given more than once' });
  });

  it('demo with S3 unreachable fails and leaves no organisation, key or job behind (the all-in-one would never seed again)', async () => {
    // A database of its own: other tests create organisations meanwhile.
    const database = new URL(process.env.DATABASE_URL!);
    database.pathname = `/${uniqueId('jdtest_demo').replaceAll('-', '_')}`;
    await ensureDatabase(database.toString());
    await migrate(database.toString());
    const client = new pg.Client({ connectionString: database.toString() });
    await client.connect();
    try {
      const error = await failsWith({ DATABASE_URL: database.toString(), S3_ENDPOINT: 'http://127.0.0.1:1' }, 'demo');
      expect(error.code).toBe('SERVICE_UNAVAILABLE');
      const { rows } = await client.query('SELECT (SELECT count(*) FROM organisations) AS organisations, (SELECT count(*) FROM api_keys) AS keys, (SELECT count(*) FROM jobs) AS jobs');
      expect(rows).toEqual([{ organisations: '0', keys: '0', jobs: '0' }]);
    } finally {
      await client.end();
      const admin = new URL(database.toString());
      admin.pathname = '/postgres';
      const dropper = new pg.Client({ connectionString: admin.toString() });
      await dropper.connect();
      await dropper.query(`DROP DATABASE IF EXISTS "${database.pathname.slice(1)}" WITH (FORCE)`);
      await dropper.end();
    }
  }, 60_000);

  it('refuses a malformed S3 URI for a job', async () => {
    const { id: orgId } = await ok('org', 'create', 'uris');
    const error = await fails('job', 'register', '--org', orgId, '--workflow', uniqueId('wf'), '--job', 'j', '--inputs', 'http://x/y', '--outputs', 's3://test-assets');
    expect(error).toEqual({
      code: 'INVALID_SOURCE',
      message: 'invalid sources: inputs[0], outputs[0]',
      details: [
        { field: 'inputs[0]', message: 'must be an S3 URI: s3://bucket/prefix/ or s3://bucket/key' },
        { field: 'outputs[0]', message: 'names no object: use s3://bucket/ for the whole bucket, or s3://bucket/key' },
      ],
    });
  });
});
