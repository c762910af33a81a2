import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { keepConnectionsOpen, stopServing } from './connections.js';

/** A raw connection to the server, with what it received and whether it has closed. */
async function open(port: number): Promise<{ socket: Socket; received: () => string; closed: () => boolean }> {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  let closed = false;
  socket.on('data', (chunk) => (received += chunk));
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  return { socket, received: () => received, closed: () => closed };
}

/** Polls `check` until it holds; fails after `timeoutMs` (a deadline for what never happens, not a speed). */
async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('stopServing', () => {
  let server: Server;
  let port: number;
  /** The server's end of every connection: what it has read shows that a request's bytes reached it. */
  let accepted: Socket[];
  /** Answers held by the test: the request to /held waits until the test answers it. */
  const held: ServerResponse[] = [];

  beforeEach(async () => {
    accepted = [];
    server = createServer((request, response) => {
      if (request.url === '/held') held.push(response);
      else response.end('ok');
    });
    server.on('connection', (socket: Socket) => accepted.push(socket));
    keepConnectionsOpen(server, 65);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as { port: number }).port;
  });

  afterEach(() => {
    held.length = 0;
    server.closeAllConnections();
    if (server.listening) server.close();
  });

  it('refuses new connections at once, lets an answer under way out with Connection: close, and resolves once it is out', async () => {
    const busy = await open(port);
    busy.socket.write('GET /held HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => held.length === 1, 'the server to hold the request');

    let stopped = false;
    const stopping = stopServing(server, 10_000).then(() => (stopped = true));
    const refused = await open(port).then(
      (late) => (late.socket.destroy(), 'accepted'),
      (error: NodeJS.ErrnoException) => error.code,
    );
    expect(refused).toBe('ECONNREFUSED');
    expect(stopped).toBe(false);

    held[0].end('done');
    await stopping;
    // The server has let go of the connection; the client reads the answer and the close a moment later.
    if (!busy.closed()) await once(busy.socket, 'close');

    expect(busy.received()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(busy.received()).toMatch(/\r\nConnection: close\r\n/i);
  });

  it('cuts a connection whose request never finishes once the limit has passed', async () => {
    const idle = await open(port);
    const slow = await open(port);
    slow.socket.write('GET /never HTTP/1.1\r\nHost: x\r\n');
    // Its first bytes have reached the server (else the connection would count as idle, and close at once).
    await until(() => accepted.some((socket) => socket.bytesRead > 0), 'the server to read the unfinished request');

    const started = Date.now();
    await stopServing(server, 300);

    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    // The server has let go of both; the client sees the closes a moment later.
    await until(() => idle.closed() && slow.closed(), 'the client to see both connections closed');
    expect(slow.received()).toBe('');
    expect(server.listening).toBe(false);
  });
});
