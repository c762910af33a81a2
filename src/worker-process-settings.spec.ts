import { readFileSync } from 'node:fs';
import { WORKER_ENVIRONMENT, WORKER_NODE_OPTIONS, workerEnvironmentAssignments } from './worker-process-settings.js';

// The settings are spelled out where workers start: this keeps those places and the bench in step.
describe('worker process settings', () => {
  const read = (file: string) => readFileSync(new URL(`../${file}`, import.meta.url), 'utf8');
  const composeWorkerService = () => {
    const compose = read('docker-compose.yml');
    return compose.slice(compose.indexOf('\n  worker:'), compose.indexOf('\n  gateway:'));
  };

  it('are what `npm run start:worker` starts node with', () => {
    const scripts = JSON.parse(read('package.json')).scripts as Record<string, string>;

    expect(workerEnvironmentAssignments()).toBe('MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=131072');
    expect(scripts['start:worker']).toBe(`exec env ${workerEnvironmentAssignments()} node ${WORKER_NODE_OPTIONS.join(' ')} dist/main.js worker`);
  });

  it("are the compose file's NODE_OPTIONS and environment for the worker service", () => {
    const worker = composeWorkerService();

    expect(worker).toContain(`NODE_OPTIONS: ${WORKER_NODE_OPTIONS.join(' ')}\n`);
    for (const [name, value] of Object.entries(WORKER_ENVIRONMENT)) expect(worker).toContain(`${name}: "${value}"\n`);
  });
});
