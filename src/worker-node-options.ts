/**
 * Node options every worker process runs with (`npm run start:worker`, the compose file's worker service, and
 * every process `npm run bench` measures; a test keeps them in step).
 *
 * A worker's data are Buffers outside the V8 heap; its JavaScript objects are few and short-lived. V8's
 * default young generation (16 MiB semi-spaces) then only holds about 30 MiB of resident memory that a worker
 * does not need: 1 MiB semi-spaces cut the worker's peak RSS by 25 to 35 MiB at no measurable CPU cost
 * (BENCHMARKS.md, "Peak RSS").
 */
export const WORKER_NODE_OPTIONS = ['--max-semi-space-size=1'];
