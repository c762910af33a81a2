/*
 * How every worker process is started: `npm run start:worker`, the compose file's worker service, and every
 * process `npm run bench` measures. A test keeps those places in step with these constants.
 */

/**
 * Node options. A worker's data are Buffers outside the V8 heap; its JavaScript objects are few and
 * short-lived. V8's default young generation (16 MiB semi-spaces) then only holds about 30 MiB of resident
 * memory that a worker does not need: 1 MiB semi-spaces cut the worker's peak RSS by 25 to 35 MiB at no
 * measurable CPU cost (BENCHMARKS.md, step viii).
 */
export const WORKER_NODE_OPTIONS = ['--max-semi-space-size=1'];

/**
 * Environment: glibc's allocator, which holds on to memory a worker has freed (musl-based images ignore these).
 * - Each thread that allocates gets its own malloc arena, up to 8 per core, and keeps what is freed in it.
 *   V8's background threads (compiling JavaScript and Prisma's WebAssembly query compiler, garbage
 *   collection) and libuv's pool allocate that way: two arenas cut a whole worker's peak RSS by 15 to 20 MiB
 *   (BENCHMARKS.md, step xvi).
 * - Once a large block is freed, glibc raises its mmap threshold (up to 32 MiB), so later large blocks come
 *   from the arenas and stay resident after they are freed. Holding the threshold at its initial 128 KiB
 *   returns them to the system: 8 to 14 MiB less at the peak, more at 4 GiB, at no measurable CPU (step xvii).
 */
export const WORKER_ENVIRONMENT: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '131072',
  MALLOC_TRIM_THRESHOLD_: '131072',
};

/** `NAME=value ...` as a shell or `env` takes it. */
export function workerEnvironmentAssignments(): string {
  return Object.entries(WORKER_ENVIRONMENT)
    .map(([name, value]) => `${name}=${value}`)
    .join(' ');
}
