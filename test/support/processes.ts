import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** Polls until `check` returns a value (not undefined/false), or fails after `timeoutMs`. */
export async function waitFor<T>(check: () => Promise<T | undefined | false | null>, timeoutMs: number, what: string, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false && value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export interface Child {
  process: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  /** Resolves true once the process exits with code 0; otherwise fails with how it ended and its last output. */
  exitedCleanly(): Promise<true>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
  /** SIGTERM, then SIGKILL if the process has not exited after `graceMs`: cleanup that cannot hang a test file. */
  stop(graceMs?: number): Promise<number | null>;
}

function track(child: ChildProcess): Child {
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    process: child,
    output: () => output,
    exited,
    exitedCleanly: async () => {
      const code = await exited;
      if (code === 0) return true;
      throw new Error(`the process ended with ${code ?? child.signalCode}; its last output:\n${output.slice(-6000)}`);
    },
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    stop: async (graceMs = 20_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** A Redis of the test's own, on its own port, that the test may stop and start again. */
export async function startPrivateRedis(port: number): Promise<Child> {
  const child = track(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  await waitFor(async () => child.output().includes('Ready to accept connections'), 10_000, 'private redis');
  return child;
}

const S3_SCRIPT = `
import S3rver from 's3rver';
const [port, directory, ...buckets] = process.argv.slice(1);
await new S3rver({ address: '127.0.0.1', port: Number(port), directory, silent: true, configureBuckets: buckets.map((name) => ({ name })) }).run();
console.log('s3 ready');
`;

/** An s3rver in a child process, so that a test can kill it mid-transfer (closing it in-process lets streams finish). */
export async function startS3Process(port: number, directory: string, buckets: string[]): Promise<Child> {
  const child = track(
    spawn(process.execPath, ['--input-type=module', '-e', S3_SCRIPT, String(port), directory, ...buckets], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
    }),
  );
  await waitFor(async () => child.output().includes('s3 ready'), 10_000, 's3rver process');
  return child;
}

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

/** A service process of a role (`node dist/main.js worker`), as production runs it; `nodeArgs` go before the script. */
export function spawnService(role: 'api' | 'worker' | 'all', env: NodeJS.ProcessEnv, nodeArgs: string[] = []): Child {
  return track(spawn(process.execPath, [...nodeArgs, MAIN, role], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/**
 * A TCP relay in front of a real server (Postgres here), that a test can cut and restore: the service sees
 * exactly what it would see if the server went away and came back on the same address.
 */
export async function startRelay(
  targetPort: number,
  listenPort = 0,
): Promise<{ port: number; readonly connections: number; cut(): Promise<void>; restore(): Promise<void> }> {
  const { createServer: createTcpServer, connect: connectTcp } = await import('node:net');
  const sockets = new Set<import('node:net').Socket>();
  let server: import('node:net').Server | undefined;
  let port = listenPort;
  let connections = 0;
  const open = () =>
    new Promise<void>((resolve, reject) => {
      server = createTcpServer((client) => {
        connections++;
        const upstream = connectTcp(targetPort, '127.0.0.1');
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
          socket.on('error', () => undefined);
        }
        client.pipe(upstream).pipe(client);
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        port = (server!.address() as { port: number }).port;
        resolve();
      });
    });
  await open();
  return {
    get port() {
      return port;
    },
    /** Connections clients have opened through it so far. */
    get connections() {
      return connections;
    },
    cut: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server!.close(() => resolve()));
    },
    // Restoring a relay that is open changes nothing (a second server on its port would fail, and orphan the first).
    restore: async () => {
      if (!server?.listening) await open();
    },
  };
}

/** What an S3 proxy may do to a request, chosen by method and URL. */
export interface S3ProxyRules {
  /** The request reaches the server and is carried out, but its answer never reaches the client. */
  swallow?: (method: string, url: string) => boolean;
  /** The request is held until the promise resolves, then forwarded. */
  hold?: (method: string, url: string) => Promise<void> | undefined;
  /** An answer of the proxy's own instead of the server's; the request does not reach the server. */
  answer?: (method: string, url: string, headers: import('node:http').IncomingHttpHeaders) => { status: number; headers?: Record<string, string>; body?: string } | undefined;
  /** The answer's headers as the client receives them. */
  answerHeaders?: (method: string, url: string, headers: import('node:http').IncomingHttpHeaders) => import('node:http').IncomingHttpHeaders;
  /**
   * Checks a request's `x-amz-checksum-crc32` against its body as S3 does (s3rver does not), and answers 400
   * BadDigest instead of forwarding it when they differ.
   */
  verifyCrc32?: boolean;
}

/** A body's CRC-32 as S3 writes it in x-amz-checksum-crc32: base64 of the big-endian value. */
function crc32Base64(body: Buffer): string {
  const value = Buffer.alloc(4);
  value.writeUInt32BE(crc32(body) >>> 0);
  return value.toString('base64');
}

/**
 * An HTTP relay in front of a server (s3rver here) that records every request and can swallow or hold chosen
 * ones: a client timing out on a request that succeeded, or a request still in flight while something else
 * happens.
 */
export async function startS3Proxy(
  targetPort: number,
  rules: S3ProxyRules = {},
): Promise<{ port: number; requests: Array<{ method: string; url: string; headers: import('node:http').IncomingHttpHeaders }>; close(): Promise<void> }> {
  const http = await import('node:http');
  const requests: Array<{ method: string; url: string; headers: import('node:http').IncomingHttpHeaders }> = [];
  // Its own connections to the store, so that closing the proxy ends them too: a released request forwarded
  // after its client went away would otherwise hold an s3rver connection (and the run's teardown) for ever.
  const agent = new http.Agent({ keepAlive: false });
  let closed = false;
  const server = http.createServer(async (request, response) => {
    const method = request.method ?? '';
    const url = request.url ?? '';
    requests.push({ method, url, headers: request.headers });
    const own = rules.answer?.(method, url, request.headers);
    if (own) {
      request.resume();
      response.writeHead(own.status, own.headers);
      response.end(own.body);
      return;
    }
    const held = rules.hold?.(method, url);
    const declaredCrc32 = rules.verifyCrc32 ? request.headers['x-amz-checksum-crc32'] : undefined;
    // A held or checked request is read whole first; a held one is forwarded once released, whatever its client
    // did meanwhile.
    let body: Buffer | undefined;
    if (held || declaredCrc32 !== undefined) {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      body = Buffer.concat(chunks);
    }
    if (declaredCrc32 !== undefined && declaredCrc32 !== crc32Base64(body!)) {
      response.writeHead(400, { 'content-type': 'application/xml' });
      response.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>BadDigest</Code><Message>The CRC32 you specified did not match the calculated checksum.</Message></Error>');
      return;
    }
    if (held) await held;
    if (closed) return void response.destroy();
    const upstream = http.request({ host: '127.0.0.1', port: targetPort, method, path: url, headers: request.headers, agent }, (answer) => {
      if (rules.swallow?.(method, url)) {
        answer.resume();
        answer.once('end', () => request.socket.destroy());
        return;
      }
      response.writeHead(answer.statusCode ?? 502, rules.answerHeaders?.(method, url, answer.headers) ?? answer.headers);
      answer.pipe(response);
    });
    upstream.on('error', () => response.destroy());
    if (body) upstream.end(body);
    else request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        closed = true;
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
