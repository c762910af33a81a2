import { readFileSync } from 'node:fs';
import { WORKER_NODE_OPTIONS } from './worker-node-options.js';

// The options are spelled out where workers start: this keeps those places and the bench in step.
describe('WORKER_NODE_OPTIONS', () => {
  const read = (file: string) => readFileSync(new URL(`../${file}`, import.meta.url), 'utf8');

  it('are what `npm run start:worker` passes to node', () => {
    const scripts = JSON.parse(read('package.json')).scripts as Record<string, string>;

    expect(scripts['start:worker']).toBe(`exec node ${WORKER_NODE_OPTIONS.join(' ')} dist/main.js worker`);
  });

  it("are the compose file's NODE_OPTIONS for the worker service", () => {
    const compose = read('docker-compose.yml');
    const worker = compose.slice(compose.indexOf('\n  worker:'), compose.indexOf('\n  gateway:'));

    expect(worker).toContain(`NODE_OPTIONS: ${WORKER_NODE_OPTIONS.join(' ')}\n`);
  });
});
