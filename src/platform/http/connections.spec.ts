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

describe('stopServing', () => {
  let server: Server;
  let port: number;
  /** Answers held by the test: the request to /held waits until the test answers it. */
  const held: ServerResponse[] = [];

  beforeEach(async () => {
    server = createServer((request, response) => {
      if (request.url === '/held') held.push(response);
      else response.end('ok');
    });
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
    await new Promise((resolve) => setTimeout(resolve, 50));

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
    await new Promise((resolve) => setTimeout(resolve, 50));

    const started = Date.now();
    await stopServing(server, 300);

    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(idle.closed()).toBe(true);
    expect(slow.closed()).toBe(true);
    expect(slow.received()).toBe('');
    expect(server.listening).toBe(false);
  });
});
