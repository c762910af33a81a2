import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { BuildSupervisor } from './build-supervisor.js';
import { PackagingError } from './packaging-error.js';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

describe('BuildSupervisor', () => {
  it('keeps nothing of a step once it is over: a build of a million entries races a million steps', async () => {
    const supervisor = new BuildSupervisor(60_000);
    const results: Array<WeakRef<object>> = [];
    const raceSteps = async () => {
      for (let step = 0; step < 100; step++) {
        const result = { entry: step, bytes: Buffer.alloc(1024) };
        results.push(new WeakRef(result));
        await supervisor.race(Promise.resolve(result));
      }
    };
    await raceSteps();
    for (let tick = 0; tick < 3; tick++) await new Promise((resolve) => setImmediate(resolve));

    collectGarbage();

    expect(results.filter((result) => result.deref() !== undefined)).toHaveLength(0);
    supervisor.close();
  });

  it('ends every step it races with the first failure, and any step raced after it at once', async () => {
    const supervisor = new BuildSupervisor(60_000);
    const running = supervisor.race(new Promise<never>(() => undefined));
    const first = new PackagingError('UPLOAD_FAILED', 'S3 refused a part', true);

    supervisor.fail(first);
    supervisor.fail(new PackagingError('PACKAGING_FAILED', 'Premature close', true));

    await expect(running).rejects.toBe(first);
    await expect(supervisor.race(Promise.resolve('late'))).rejects.toBe(first);
    supervisor.close();
  });

  it('answers a step that ends first with its own result or error', async () => {
    const supervisor = new BuildSupervisor(60_000);

    await expect(supervisor.race(Promise.resolve(42))).resolves.toBe(42);
    await expect(supervisor.race(Promise.reject(new Error('a step of its own')))).rejects.toThrow('a step of its own');
    supervisor.close();
  });
});
