import { WORKER_ENVIRONMENT } from '../src/platform/worker-process-settings.js';
import { measuredEnvironment } from './measure-process.js';

describe('the environment of a measured process', () => {
  it("is the worker's glibc settings under the bench's own environment, which wins", () => {
    const env = measuredEnvironment({ PATH: '/bin', MALLOC_ARENA_MAX: '16' });

    expect(env).toEqual({ ...WORKER_ENVIRONMENT, PATH: '/bin', MALLOC_ARENA_MAX: '16' });
    expect(env.MALLOC_MMAP_THRESHOLD_).toBe('131072');
  });

  it('leaves the glibc settings out with BENCH_WORKER_ENV=0', () => {
    expect(measuredEnvironment({ PATH: '/bin', BENCH_WORKER_ENV: '0' })).toEqual({ PATH: '/bin', BENCH_WORKER_ENV: '0' });
  });
});
