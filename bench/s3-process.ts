import { fork } from 'node:child_process';
import { mkdtemp, rm, statfs } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_BUCKETS, S3RVER_CREDENTIALS } from './bench-config.js';

export interface BenchS3 {
  endpoint: string;
  /** The s3rver child's pid (to read its CPU time), undefined for an external endpoint. */
  pid: number | undefined;
  /** s3rver's folder, when the bench runs it. */
  directory?: string;
  close(): Promise<void>;
}

/**
 * Where s3rver keeps its files. S3 stands in for a remote service, so its disk is not part of what is measured:
 * RAM (/dev/shm) when it can hold the data sets plus the largest copy twice (parts, then the assembled object),
 * so that page-cache writeback on the real disk does not make the figures noisy; else the temp folder.
 */
async function s3Folder(requested: string | undefined, fallback: string, neededBytes: number): Promise<string> {
  if (requested) return requested;
  try {
    const fs = await statfs('/dev/shm');
    if (fs.bavail * fs.bsize > neededBytes) return '/dev/shm';
  } catch {
    // No /dev/shm here.
  }
  return fallback;
}

/**
 * The bench's S3: BENCH_S3_ENDPOINT when given (credentials from the SDK's default chain), else an s3rver in a
 * child process on a temp folder, removed at the end.
 */
export async function startBenchS3(
  external: string | undefined,
  options: { s3Dir: string | undefined; tmpDir: string; neededBytes: number; complete?: 'assemble' | 'rewrite' },
): Promise<BenchS3> {
  // BENCH_S3_PID: the pid of an external s3rver on this machine, to report its CPU as well.
  if (external) return { endpoint: external, pid: Number(process.env.BENCH_S3_PID) || undefined, close: async () => undefined };
  // Every child of the bench inherits these, so they all sign requests the way s3rver expects.
  Object.assign(process.env, S3RVER_CREDENTIALS);
  const directory = await mkdtemp(path.join(await s3Folder(options.s3Dir, options.tmpDir, options.neededBytes), 'jd-bench-s3-'));
  const child = fork(fileURLToPath(new URL('./s3-server.js', import.meta.url)), [directory, BENCH_BUCKETS.assets, BENCH_BUCKETS.packages], {
    // s3rver's ListObjectsV2 continuation tokens use DES, which Node 20's OpenSSL 3 only has in its legacy
    // provider: without this flag any listing past 1,000 keys (a data set of small objects) fails with 500.
    execArgv: ['--openssl-legacy-provider'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, BENCH_S3_COMPLETE: options.complete ?? process.env.BENCH_S3_COMPLETE ?? 'assemble' },
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message: { port: number }) => resolve(message.port));
    child.once('exit', (code) => reject(new Error(`s3rver exited with code ${code} before it listened`)));
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    directory,
    pid: child.pid,
    async close() {
      if (child.connected) child.disconnect();
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      await rm(directory, { recursive: true, force: true });
    },
  };
}
