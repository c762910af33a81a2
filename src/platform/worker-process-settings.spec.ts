import { readFileSync } from 'node:fs';
import { hasWorkerSettings, optionsToAdd, WORKER_ENVIRONMENT, WORKER_NODE_OPTIONS } from './worker-process-settings.js';

const ALL_SET = { ...WORKER_ENVIRONMENT };

describe('worker process settings', () => {
  const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');

  it('count as applied when the flag is on the command line or in NODE_OPTIONS and every variable is set', () => {
    expect(hasWorkerSettings(WORKER_NODE_OPTIONS, ALL_SET)).toBe(true);
    expect(hasWorkerSettings([], { ...ALL_SET, NODE_OPTIONS: '--max-semi-space-size=2 --heap-growing-percent=50' })).toBe(true);
    expect(hasWorkerSettings(['--max-semi-space-size=4', '--heap-growing-percent=100'], { ...ALL_SET, MALLOC_ARENA_MAX: '4' })).toBe(true);
  });

  it('count as missing when the flag or any variable is missing, unless this is the relaunched process', () => {
    expect(hasWorkerSettings([], ALL_SET)).toBe(false);
    expect(hasWorkerSettings(['--max-semi-space-size=1'], ALL_SET)).toBe(false);
    expect(hasWorkerSettings(WORKER_NODE_OPTIONS, { MALLOC_ARENA_MAX: '2' })).toBe(false);
    expect(hasWorkerSettings([], { JOB_DOWNLOADS_WORKER_SETTINGS_APPLIED: '1' })).toBe(true);
  });

  // main.js applies them itself, so no start script, image or compose file repeats them.
  it("adds on relaunch only the options the operator has not set: a value of theirs in NODE_OPTIONS is not overridden by ours on the command line", () => {
    expect(optionsToAdd(WORKER_NODE_OPTIONS, [], {})).toEqual(WORKER_NODE_OPTIONS);
    expect(optionsToAdd(WORKER_NODE_OPTIONS, [], { NODE_OPTIONS: '--max-semi-space-size=16' })).toEqual(['--heap-growing-percent=75']);
    expect(optionsToAdd(WORKER_NODE_OPTIONS, ['--heap-growing-percent=50'], {})).toEqual(['--max-semi-space-size=1']);
    // V8 takes underscores for dashes.
    expect(optionsToAdd(WORKER_NODE_OPTIONS, [], { NODE_OPTIONS: '--max_semi_space_size=16 --heap_growing_percent=50' })).toEqual([]);
  });

  it('are spelled out nowhere else: npm, the image and compose start plain `dist/main.js worker`', () => {
    const scripts = JSON.parse(read('package.json')).scripts as Record<string, string>;
    const compose = read('docker-compose.yml');
    const worker = compose.slice(compose.indexOf('\n  worker:'), compose.indexOf('\n  gateway:'));

    expect(scripts['start:worker']).toBe('exec node dist/main.js worker');
    expect(read('Dockerfile')).toContain('ENTRYPOINT ["node", "dist/main.js"]');
    expect(worker).toContain('command: ["worker"]');
    for (const setting of [...Object.keys(WORKER_ENVIRONMENT), ...WORKER_NODE_OPTIONS.map((option) => option.split('=')[0])]) {
      expect(scripts['start:worker']).not.toContain(setting);
      expect(worker).not.toContain(setting);
    }
  });
});
