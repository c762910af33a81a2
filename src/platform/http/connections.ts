import type { IncomingMessage, Server, ServerResponse } from 'node:http';

/** Servers that are stopping: their answers close the connection they came on. */
const draining = new WeakSet<Server>();

/**
 * How long an idle keep-alive connection stays open. A gateway or load balancer in front keeps its connections
 * to the service for reuse (an AWS ALB for 60 s, nginx's upstream keepalive for 60 s): the service must not be
 * the one to close them first. With Node's default of 5 s, a request sent as the service closes the idle
 * connection is lost, and the gateway answers 502. A request's headers get as long, and a second more, as
 * Node requires of headersTimeout.
 */
export function keepConnectionsOpen(server: Server, keepAliveSeconds: number): void {
  server.keepAliveTimeout = keepAliveSeconds * 1000;
  server.headersTimeout = (keepAliveSeconds + 1) * 1000;
  server.prependListener('request', (_request: IncomingMessage, response: ServerResponse) => {
    // Whether an answer keeps its connection is settled as its head is written (Node's implicit head goes
    // through writeHead too), so that answers already under way at the signal say `Connection: close` as well.
    const writeHead = response.writeHead;
    response.writeHead = function (this: ServerResponse, ...args: Parameters<ServerResponse['writeHead']>) {
      if (draining.has(server)) this.shouldKeepAlive = false;
      return writeHead.apply(this, args);
    } as ServerResponse['writeHead'];
  });
}

/**
 * The process is stopping: idle connections close now, and every other one once its answer is out (answers
 * from now on, and those under way, say `Connection: close`). Otherwise a connection busy at the signal would
 * stay open for the keep-alive time after its answer, and the server's close would wait for it past the
 * shutdown deadline.
 */
export function drainConnections(server: Server): void {
  draining.add(server);
  // Read when an answer ends; 0 would mean no limit at all.
  server.keepAliveTimeout = 1;
  server.closeIdleConnections();
}

/**
 * Stops taking connections (a gateway's next connect is refused, and it tries another instance) and drains
 * the open ones. Resolves once every request already received has been answered and its connection closed,
 * or after `limitMs`, when the connections still open (a client that never finishes its request) are cut.
 * The application's database and Redis connections must outlive this: the requests under way still use them.
 */
export async function stopServing(server: Server, limitMs: number): Promise<void> {
  if (!server.listening) return;
  drainConnections(server);
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<'limit'>((resolve) => (timer = setTimeout(() => resolve('limit'), limitMs)));
  const outcome = await Promise.race([closed, limit]);
  clearTimeout(timer);
  if (outcome === 'limit') {
    server.closeAllConnections();
    await closed;
  }
}
