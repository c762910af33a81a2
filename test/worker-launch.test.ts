import { readFileSync } from 'node:fs';
import { WORKER_ENVIRONMENT, WORKER_NODE_OPTIONS } from '../src/platform/worker-process-settings.js';
import { uniqueQueuePrefix } from './support/harness.js';
import { freePort, spawnService, waitFor } from './support/processes.js';

/** The process of `pid` or, when it relaunched itself as a child (Node before 22.15), that child. */
function workerProcessOf(pid: number): number {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return children.length ? children[0] : pid;
}

const environmentOf = (pid: number) =>
  Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
const commandLineOf = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);

describe('a worker started as `node dist/main.js worker`, with nothing else set', () => {
  it('runs with the worker process settings, and stops with its launcher', async () => {
    const port = await freePort();
    const env: NodeJS.ProcessEnv = { QUEUE_PREFIX: uniqueQueuePrefix(), WORKER_HEALTH_PORT: String(port) };
    for (const name of [...Object.keys(WORKER_ENVIRONMENT), 'NODE_OPTIONS']) env[name] = undefined;
    const service = spawnService('worker', env);
    try {
      await waitFor(() => fetch(`http://127.0.0.1:${port}/readyz`).then((response) => response.ok, () => false), 30_000, 'the worker to be ready', 100);
      const worker = workerProcessOf(service.process.pid!);

      expect(environmentOf(worker)).toMatchObject(WORKER_ENVIRONMENT);
      expect(commandLineOf(worker)).toEqual(expect.arrayContaining([...WORKER_NODE_OPTIONS, expect.stringMatching(/dist\/main\.js$/), 'worker']));

      await service.kill('SIGKILL');
      await waitFor(async () => fetch(`http://127.0.0.1:${port}/healthz`).then(() => false, () => true), 10_000, 'the worker to stop');
    } finally {
      await service.kill('SIGKILL');
    }
  }, 60_000);
});
