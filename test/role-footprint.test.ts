import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { uniqueQueuePrefix } from './support/harness.js';
import { freePort, spawnService, waitFor, type Child } from './support/processes.js';

const RECORDER = fileURLToPath(new URL('./support/record-modules.mjs', import.meta.url));

/**
 * Starts `node dist/main.js <role>` with a module recorder, waits until the process is ready, and answers
 * the URLs of every module it loaded on the way.
 */
async function modulesLoadedBy(role: 'api' | 'worker', scratch: string): Promise<string[]> {
  const listFile = path.join(scratch, `${role}-modules.txt`);
  const port = await freePort();
  const service: Child = spawnService(
    role,
    { RECORD_MODULES_TO: listFile, QUEUE_PREFIX: uniqueQueuePrefix(), [role === 'worker' ? 'WORKER_HEALTH_PORT' : 'PORT']: String(port), INTERNAL_PORT: String(await freePort()) },
    ['--import', RECORDER],
  );
  try {
    await waitFor(
      async () => {
        if (service.process.exitCode !== null) throw new Error(`the ${role} exited early:\n${service.output()}`);
        return fetch(`http://127.0.0.1:${port}/readyz`).then((response) => response.ok, () => false);
      },
      30_000,
      `the ${role} to be ready`,
      100,
    );
  } finally {
    await service.kill('SIGKILL');
  }
  return (await readFile(listFile, 'utf8')).split('\n').filter(Boolean);
}

const fromPackage = (name: string) => (url: string) => url.includes(`/node_modules/${name}/`);
const ourFile = (file: string) => (url: string) => url.endsWith(`/dist/${file}`);

// A worker carries only what packaging needs: Swagger, the download route and the embedded S3 store would add
// about 20 MiB to each worker process (BENCHMARKS.md, the whole worker).
describe('what each role loads', () => {
  let scratch: string;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'role-footprint-'));
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('a ready worker has loaded the packaging code, and neither Swagger, the API nor the embedded S3 store', async () => {
    const loaded = await modulesLoadedBy('worker', scratch);

    expect(loaded.some(ourFile('packaging/packaging.service.js'))).toBe(true);
    expect(loaded.some(fromPackage('archiver'))).toBe(true);
    expect(loaded.filter(fromPackage('@nestjs/swagger'))).toEqual([]);
    expect(loaded.filter(fromPackage('s3rver'))).toEqual([]);
    expect(loaded.filter(ourFile('downloads/api/downloads-api.module.js'))).toEqual([]);
    expect(loaded.filter(ourFile('downloads/api/download.controller.js'))).toEqual([]);
    expect(loaded.filter(ourFile('app/openapi.js'))).toEqual([]);
  });

  it('a ready API has loaded the download route and Swagger, which the worker leaves out', async () => {
    const loaded = await modulesLoadedBy('api', scratch);

    expect(loaded.some(ourFile('downloads/api/download.controller.js'))).toBe(true);
    expect(loaded.some(ourFile('app/openapi.js'))).toBe(true);
    expect(loaded.some(fromPackage('@nestjs/swagger'))).toBe(true);
    expect(loaded.filter(fromPackage('s3rver'))).toEqual([]);
  });
});
