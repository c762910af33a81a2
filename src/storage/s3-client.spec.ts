import { HeadObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { loadConfig } from '../platform/config/app-config.js';
import { createS3Client, maxSocketsFor, s3ClientConfig } from './s3-client.js';

/**
 * How many connections one S3 client opens at most to an endpoint, counted on a TCP server that accepts them and
 * never answers (a TLS handshake then waits too), while more requests than that are in flight.
 */
async function peakConnections(scheme: 'http' | 'https', requests: number, settings: Record<string, string>): Promise<{ peak: number; expected: number }> {
  const sockets = new Set<Socket>();
  let peak = 0;
  const server = createServer((socket) => {
    sockets.add(socket);
    peak = Math.max(peak, sockets.size);
    socket.on('error', () => undefined).on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const config = loadConfig({ S3_ENDPOINT: `${scheme}://127.0.0.1:${port}`, S3_FORCE_PATH_STYLE: 'true', ...settings });
  const client = new S3Client(s3ClientConfig(config));
  const stop = new AbortController();
  // One signal for every request: each adds a listener.
  setMaxListeners(requests + 10, stop.signal);
  try {
    for (let i = 0; i < requests; i++) {
      client.send(new HeadObjectCommand({ Bucket: 'b', Key: `k${i}` }), { abortSignal: stop.signal }).catch(() => undefined);
    }
    // As many connections as the agent allows (a client's first request loads its credentials and agents, which
    // can take a while on a busy machine), then a moment to show it opens no more.
    const expected = maxSocketsFor(config);
    const deadline = Date.now() + 10_000;
    while (peak < expected && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    await new Promise((resolve) => setTimeout(resolve, 300));
    return { peak, expected };
  } finally {
    stop.abort();
    client.destroy();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('s3ClientConfig: connections per process', () => {
  it.each(['http', 'https'] as const)('lets every build read and upload at once over %s, past the SDK default of 50', async (scheme) => {
    // 4 builds of 16 reads each, 4 upload parts each (UPLOAD_BUFFER_MIB 32) and 4 other requests: 96 connections.
    const { peak, expected } = await peakConnections(scheme, 120, { WORKER_CONCURRENCY: '4', FETCH_CONCURRENCY: '16' });
    expect(expected).toBe(96);
    expect(peak).toBe(expected);
  }, 30_000);

  it('counts every upload part a larger UPLOAD_BUFFER_MIB lets a build have in flight', async () => {
    // 128 MiB: 16 parts of 8 MiB per build, all of which may be in flight beside its 16 reads.
    const { peak, expected } = await peakConnections('https', 200, { WORKER_CONCURRENCY: '4', FETCH_CONCURRENCY: '16', UPLOAD_BUFFER_MIB: '128' });
    expect(expected).toBe(4 * (16 + 16 + 4));
    expect(peak).toBe(expected);
  }, 30_000);
});

describe('createS3Client: how upload bodies are signed', () => {
  /** The headers of one UploadPart of `body`, as a server at `scheme` receives them. */
  async function uploadPartHeaders(scheme: 'http' | 'https', body: Buffer): Promise<IncomingHttpHeaders> {
    let received: IncomingHttpHeaders | undefined;
    const answer = (request: IncomingMessage, response: ServerResponse) => {
      received = request.headers;
      request.resume();
      request.on('end', () => response.writeHead(200, { etag: '"part"' }).end());
    };
    const directory = mkdtempSync(path.join(tmpdir(), 'tls-'));
    let server: HttpServer;
    if (scheme === 'https') {
      // A certificate of its own for 127.0.0.1; the client below does not check it.
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', path.join(directory, 'key.pem'), '-out', path.join(directory, 'cert.pem')], { stdio: 'ignore' });
      server = createHttpsServer({ key: readFileSync(path.join(directory, 'key.pem')), cert: readFileSync(path.join(directory, 'cert.pem')) }, answer);
    } else {
      server = createHttpServer(answer);
    }
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const config = loadConfig({ S3_ENDPOINT: `${scheme}://127.0.0.1:${(server.address() as { port: number }).port}`, S3_FORCE_PATH_STYLE: 'true' });
    const client = createS3Client({ ...s3ClientConfig(config), credentials: { accessKeyId: 'key', secretAccessKey: 'secret' }, requestHandler: { httpsAgent: { rejectUnauthorized: false } } });
    try {
      await client.send(new UploadPartCommand({ Bucket: 'b', Key: 'k', UploadId: 'u', PartNumber: 1, Body: body, ContentLength: body.length }));
      return received!;
    } finally {
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(directory, { recursive: true, force: true });
    }
  }

  it('sends a part over https unsigned, with the CRC32 S3 checks it against', async () => {
    const body = randomBytes(1024 * 1024);
    const headers = await uploadPartHeaders('https', body);
    expect(headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    expect(headers['x-amz-checksum-crc32']).toBe(Buffer.from(crc32(body).toString(16).padStart(8, '0'), 'hex').toString('base64'));
    expect(headers.authorization).toMatch(/SignedHeaders=[^,]*x-amz-content-sha256/);
  }, 30_000);

  it('signs a part over http with its SHA-256', async () => {
    const body = randomBytes(1024 * 1024);
    const headers = await uploadPartHeaders('http', body);
    expect(headers['x-amz-content-sha256']).toBe(createHash('sha256').update(body).digest('hex'));
  });
});
