import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface ShapedNetwork {
  /** The proxy's address: S3 as the measured processes see it. */
  endpoint: string;
  /** The proxy's pid, to read its CPU. */
  pid: number;
  latencyMs: number;
  /** Per connection, each way. */
  bytesPerSecond: number;
  close(): Promise<void>;
}

/** Starts the shaping proxy (shaping-proxy.js) in a child process in front of an http:// S3 endpoint. */
export async function startShapingProxy(target: string, latencyMs: number, bytesPerSecond: number): Promise<ShapedNetwork> {
  const url = new URL(target);
  if (url.protocol !== 'http:') throw new Error(`the S3-like network proxies http:// endpoints only, not ${target}`);
  const child = fork(
    fileURLToPath(new URL('./shaping-proxy.js', import.meta.url)),
    [url.hostname, url.port || '80', String(latencyMs), String(bytesPerSecond)],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message: { port: number }) => resolve(message.port));
    child.once('exit', (code) => reject(new Error(`the shaping proxy exited with code ${code} before it listened`)));
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    latencyMs,
    bytesPerSecond,
    async close() {
      if (child.connected) child.disconnect();
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}
