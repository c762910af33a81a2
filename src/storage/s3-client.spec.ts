import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createServer, type Socket } from 'node:net';
import { loadConfig } from '../platform/config/app-config.js';
import { maxSocketsFor, s3ClientConfig } from './s3-client.js';

/**
 * How many connections one S3 client opens at most to an endpoint, counted on a TCP server that accepts them and
 * never answers (a TLS handshake then waits too), while more requests than that are in flight.
 */
async function peakConnections(scheme: 'http' | 'https', requests: number, settings: Record<string, string>): Promise<{ peak: number; expected: number }> {
  const sockets = new Set<Socket>();
  let peak = 0;
  let lastOpenedAt = Date.now();
  const server = createServer((socket) => {
    sockets.add(socket);
    peak = Math.max(peak, sockets.size);
    lastOpenedAt = Date.now();
    socket.on('error', () => undefined).on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const config = loadConfig({ S3_ENDPOINT: `${scheme}://127.0.0.1:${port}`, S3_FORCE_PATH_STYLE: 'true', ...settings });
  const client = new S3Client(s3ClientConfig(config));
  const stop = new AbortController();
  try {
    for (let i = 0; i < requests; i++) {
      client.send(new HeadObjectCommand({ Bucket: 'b', Key: `k${i}` }), { abortSignal: stop.signal }).catch(() => undefined);
    }
    // Connections open within milliseconds; none for half a second means the agent holds the rest back.
    while (Date.now() - lastOpenedAt < 500) await new Promise((resolve) => setTimeout(resolve, 50));
    return { peak, expected: maxSocketsFor(config) };
  } finally {
    stop.abort();
    client.destroy();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('s3ClientConfig: connections per process', () => {
  it.each(['http', 'https'] as const)('lets every build read and upload at once over %s, past the SDK default of 50', async (scheme) => {
    // 4 builds of 16 reads each, plus their uploads: 96 connections.
    const { peak, expected } = await peakConnections(scheme, 120, { WORKER_CONCURRENCY: '4', FETCH_CONCURRENCY: '16' });
    expect(expected).toBe(96);
    expect(peak).toBe(expected);
  }, 20_000);
});
