import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { EMBEDDED_S3_CREDENTIALS } from '../src/storage/s3-client.js';
import { freePort, waitFor } from './support/processes.js';
import { download, downloadPath, inspectZip, startTestApp, uniqueQueuePrefix, unzipTest } from './support/harness.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const run = promisify(execFile);

const DEMO_FILES = [
  'inputs/parameters.json',
  'inputs/scene/B04.tif',
  'inputs/scene/B08.tif',
  'manifest.json',
  'outputs/footprint.geojson',
  'outputs/ndvi.tif',
  'outputs/statistics.csv',
];

/** Runs the `curl` line the service printed, exactly as a newcomer would paste it. */
async function paste(curl: string): Promise<any> {
  const { stdout } = await run('sh', ['-c', curl]);
  return JSON.parse(stdout);
}

async function expectDemoZip(signedUrl: string, scratch: string): Promise<void> {
  const { status, body } = await download(signedUrl);
  expect(status).toBe(200);
  const file = path.join(scratch, `${Date.now()}.zip`);
  await writeFile(file, body);
  expect(inspectZip(file).entries.map((e) => e.name).sort()).toEqual(DEMO_FILES);
  expect(unzipTest(file)).toContain('No errors detected');
}

describe('the demo', () => {
  let scratch: string;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'demo-'));
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('`npm start` on an empty database: migrates, embeds S3, seeds the demo, and its curl gets a ready ZIP; SIGTERM stops it cleanly', async () => {
    const database = `${process.env.TEST_RUN_ID}_allinone`;
    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: process.env.DATABASE_URL!.replace(/\/[^/]+$/, `/${database}`),
      PORT: String(port),
      EMBEDDED_S3_PORT: String(await freePort()),
      WORKER_HEALTH_PORT: String(await freePort()),
      INTERNAL_PORT: String(await freePort()),
      DATA_DIR: path.join(scratch, 'data'),
      QUEUE_PREFIX: uniqueQueuePrefix(),
      DEMO_SEED: 'true',
      LOG_LEVEL: 'info',
    };
    for (const name of ['S3_ENDPOINT', 'S3_BUCKET', 'S3_ASSETS_BUCKET', 'S3_FORCE_PATH_STYLE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) delete env[name];
    let service: ChildProcess | undefined;
    try {
      service = spawn(process.execPath, [MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      service.stdout!.on('data', (chunk) => (output += chunk));
      service.stderr!.on('data', (chunk) => (output += chunk));
      const curl = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no curl line printed:\n${output}`)), 60_000);
        service!.stdout!.on('data', () => {
          const match = /^\s*(curl .*\/download)\s*$/m.exec(output);
          if (match) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        });
        service!.on('exit', (code) => reject(new Error(`service exited with ${code}:\n${output}`)));
      });
      expect(curl).toContain(`http://localhost:${port}/v0/workflows/demo-workflow-`);

      const answer = await paste(curl);

      expect(answer).toMatchObject({ status: 'ready', progress: 100 });
      await expectDemoZip(answer.signed_url, scratch);
      // JSON log lines; the key appears once, in the banner for the person at the terminal, never in a log.
      const apiKey = /Bearer (\S+)'/.exec(curl)![1];
      expect(output.split(apiKey).length - 1).toBe(2); // the banner and the curl line
      const requestLine = output.split('\n').find((line) => line.startsWith('{') && line.includes('"req"') && line.includes('/download'));
      expect(JSON.parse(requestLine!).req.headers.authorization).toBe('[redacted]');
      const exited = new Promise<number | null>((resolve) => service!.on('exit', resolve));
      service.kill('SIGTERM');
      expect(await exited).toBe(0);
      service = undefined;
    } finally {
      service?.kill('SIGKILL');
      const client = new pg.Client({ connectionString: process.env.DATABASE_URL!.replace(/\/[^/]+$/, '/postgres') });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      await client.end();
    }
  }, 120_000);

  it('`node dist/main.js` started without --openssl-legacy-provider runs itself again with it: its embedded S3 lists past one page', async () => {
    const database = `${process.env.TEST_RUN_ID}_plainnode`;
    const [port, s3Port] = [await freePort(), await freePort()];
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: process.env.DATABASE_URL!.replace(/\/[^/]+$/, `/${database}`),
      PORT: String(port),
      EMBEDDED_S3_PORT: String(s3Port),
      WORKER_HEALTH_PORT: String(await freePort()),
      INTERNAL_PORT: String(await freePort()),
      DATA_DIR: path.join(scratch, 'plain-node'),
      QUEUE_PREFIX: uniqueQueuePrefix(),
      DEMO_SEED: 'false',
    };
    // As a newcomer or an image would start it: no NODE_OPTIONS (the tests' own carry the flag).
    for (const name of ['NODE_OPTIONS', 'S3_ENDPOINT', 'S3_BUCKET', 'S3_ASSETS_BUCKET', 'S3_FORCE_PATH_STYLE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) delete env[name];
    let service: ChildProcess | undefined = spawn(process.execPath, [MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    service.stdout!.on('data', (chunk) => (output += chunk));
    service.stderr!.on('data', (chunk) => (output += chunk));
    const s3 = new S3Client({ endpoint: `http://127.0.0.1:${s3Port}`, region: 'us-east-1', forcePathStyle: true, credentials: EMBEDDED_S3_CREDENTIALS });
    try {
      await waitFor(() => fetch(`http://127.0.0.1:${port}/readyz`).then((response) => response.ok, () => false), 60_000, 'the all-in-one to be ready', 200);
      for (const key of ['a.tif', 'b.tif']) await s3.send(new PutObjectCommand({ Bucket: 'job-downloads', Key: `paging/${key}`, Body: key }));

      // One key a page: the continuation token is what s3rver encrypts with DES.
      const first = await s3.send(new ListObjectsV2Command({ Bucket: 'job-downloads', Prefix: 'paging/', MaxKeys: 1 }));
      const second = await s3.send(new ListObjectsV2Command({ Bucket: 'job-downloads', Prefix: 'paging/', MaxKeys: 1, ContinuationToken: first.NextContinuationToken }));

      expect(first.Contents?.map((object) => object.Key)).toEqual(['paging/a.tif']);
      expect(first.IsTruncated).toBe(true);
      expect(second.Contents?.map((object) => object.Key)).toEqual(['paging/b.tif']);
      const exited = new Promise<number | null>((resolve) => service!.on('exit', resolve));
      service.kill('SIGTERM');
      expect(await exited).toBe(0);
      service = undefined;
    } finally {
      s3.destroy();
      service?.kill('SIGKILL');
      const client = new pg.Client({ connectionString: process.env.DATABASE_URL!.replace(/\/[^/]+$/, '/postgres') });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      await client.end();
    }
  }, 120_000);

  it('`cli demo` seeds an organisation, a key and a finished job whose package downloads', async () => {
    const app = await startTestApp('all');
    try {
      const { stdout } = await run(process.execPath, [CLI, 'demo'], { env: { ...process.env, PORT: String(app.config.PORT) } });
      const seed = JSON.parse(stdout);
      expect(Object.keys(seed)).toEqual(['apiKey', 'workflowId', 'jobId', 'curl']);
      expect(seed.curl).toContain(`Authorization: Bearer ${seed.apiKey}`);

      const { body } = await app.http
        .put(downloadPath(seed))
        .set('Authorization', `Bearer ${seed.apiKey}`)
        .set('Prefer', 'wait=30')
        .expect(200);

      expect(body.status).toBe('ready');
      await expectDemoZip(body.signed_url, scratch);
    } finally {
      await app.close();
    }
  });
});
