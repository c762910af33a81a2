/*
 * How every worker process runs, kept in this one place. `node dist/main.js worker` applies these settings to
 * itself (relaunchWithWorkerSettings), so a worker started by `npm run start:worker`, by the image
 * (`docker run IMAGE worker`), by compose or by hand runs the same way; the bench measures its processes so.
 * This file imports nothing: the launcher loads it before anything else.
 */
import { spawn } from 'node:child_process';
import { createCipheriv } from 'node:crypto';

/**
 * Node options. A worker's data are Buffers outside the V8 heap; its JavaScript objects are few and
 * short-lived.
 * - V8's default young generation (16 MiB semi-spaces) only holds about 30 MiB of resident memory that a
 *   worker does not need; 1 MiB semi-spaces cost no measurable CPU.
 * - After each major GC, V8 sets the next one's threshold by a growing factor that it lowers when collections
 *   are quick. With a worker's small heap and a stream of promoted Buffer wrappers, that ran a major GC every
 *   100 ms or so in a lean process (96 in one 1 GiB build, half again the build's CPU). A fixed factor keeps
 *   them rare. It also sets a worker's peak: a build of thousands of small files promotes the garbage of
 *   every S3 request, so the old generation reaches its threshold again and again. 1.75 keeps that peak about
 *   20 MiB lower than 2 at no measurable cost; 1.5 brought the major GCs back (BENCHMARKS.md).
 */
export const WORKER_NODE_OPTIONS = ['--max-semi-space-size=1', '--heap-growing-percent=75'];

/**
 * Environment: glibc's allocator, which holds on to memory a worker has freed (musl-based images ignore these).
 * - Each thread that allocates gets its own malloc arena, up to 8 per core, and keeps what is freed in it.
 *   V8's background threads (compiling JavaScript and Prisma's WebAssembly query compiler, garbage
 *   collection) and libuv's pool allocate that way: two arenas keep that memory from multiplying.
 * - Once a large block is freed, glibc raises its mmap threshold (up to 32 MiB), so later large blocks come
 *   from the arenas and stay resident after they are freed. Holding the threshold at its initial 128 KiB
 *   returns them to the system.
 */
export const WORKER_ENVIRONMENT: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '131072',
  MALLOC_TRIM_THRESHOLD_: '131072',
};

/** Set in the relaunched process, so that it never relaunches itself again (the bench sets it to opt out). */
export const SETTINGS_APPLIED_MARKER = 'JOB_DOWNLOADS_WORKER_SETTINGS_APPLIED';
const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

/** A V8 flag's name, as V8 reads it: `--max_semi_space_size` and `--max-semi-space-size` are one flag. */
const flagName = (option: string) => option.split('=')[0].replaceAll('_', '-');

/** Whether this process already runs with the worker's settings (an operator's own values count). */
export function hasWorkerSettings(execArgv: string[], env: NodeJS.ProcessEnv): boolean {
  if (env[SETTINGS_APPLIED_MARKER] === '1') return true;
  const flagsSet = optionsToAdd(WORKER_NODE_OPTIONS, execArgv, env).length === 0;
  return flagsSet && Object.keys(WORKER_ENVIRONMENT).every((name) => env[name] !== undefined);
}

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

/**
 * glibc reads its settings when the process starts and V8 sizes its heap then, so a worker that was started
 * without them runs itself again with them. Where Node can (22.15 and later, as in the image), the process
 * image is replaced: one process, one PID. On older Node it runs as a child process: stdio shared, signals
 * forwarded, its exit status passed on, and it exits if this small parent dies (see exitWithLauncher).
 */
export function relaunchWithWorkerSettings(): void {
  relaunchWith(WORKER_NODE_OPTIONS, WORKER_ENVIRONMENT);
}

/**
 * The all-in-one's embedded S3 (s3rver) encrypts listing continuation tokens with DES, which OpenSSL 3 keeps
 * in its legacy provider: without it, a listing past 1,000 objects fails, and so does every job that large.
 * `npm start` passes the flag; started any other way (`node dist/main.js`, `docker run IMAGE all`), the
 * all-in-one runs itself again with it.
 */
export const LEGACY_OPENSSL_OPTION = '--openssl-legacy-provider';

export function hasLegacyCiphers(): boolean {
  try {
    createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
    return true;
  } catch {
    return false;
  }
}

/** Whether this process was started by relaunchWith (and must not start itself again). */
export function isRelaunched(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[SETTINGS_APPLIED_MARKER] === '1';
}

export function relaunchWithLegacyOpenSsl(): void {
  relaunchWith([LEGACY_OPENSSL_OPTION], {});
}

/**
 * The options of `nodeOptions` that the process does not set already, on its command line or in NODE_OPTIONS:
 * an option given on the command line beats NODE_OPTIONS, so an operator's own value there must not be
 * overridden by our default.
 */
export function optionsToAdd(nodeOptions: readonly string[], execArgv: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const present = `${execArgv.join(' ')} ${env.NODE_OPTIONS ?? ''}`.split(/\s+/).map(flagName);
  return nodeOptions.filter((option) => !present.includes(flagName(option)));
}

function relaunchWith(nodeOptions: readonly string[], environment: Readonly<Record<string, string>>): void {
  const args = [...optionsToAdd(nodeOptions, process.execArgv, process.env), ...process.execArgv, ...process.argv.slice(1)];
  const env = { ...environment, ...process.env, [SETTINGS_APPLIED_MARKER]: '1' };
  const execve = (process as { execve?: Execve }).execve;
  if (execve) execve(process.execPath, [process.execPath, ...args], env);

  const child = spawn(process.execPath, args, { stdio: ['inherit', 'inherit', 'inherit', 'ipc'], env });
  for (const signal of FORWARDED_SIGNALS) process.on(signal, () => child.kill(signal));
  child.once('exit', (code, signal) => {
    if (signal) {
      // Say so (the service could not), then die of the same signal, so that whoever started us sees what
      // happened to the service.
      process.stderr.write(`${JSON.stringify({ level: 50, time: Date.now(), pid: process.pid, msg: `the service process (pid ${child.pid}) was ended by ${signal}` })}\n`);
      for (const forwarded of FORWARDED_SIGNALS) process.removeAllListeners(forwarded);
      process.kill(process.pid, signal);
    } else {
      process.exit(code ?? 1);
    }
  });
}

/**
 * In a worker run as a child of the launcher: when the launcher dies (SIGKILL, which it cannot forward), the
 * worker goes with it, as it would with its machine, and its builds are taken over by other workers.
 */
export function exitWithLauncher(): void {
  if (!isRelaunched() || !process.channel) return;
  process.channel.unref();
  process.once('disconnect', () => process.exit(137));
}
