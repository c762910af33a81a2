import type { Server } from 'node:http';

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
  server.prependListener('request', (_request, response) => {
    if (draining.has(server)) response.shouldKeepAlive = false;
  });
}

/**
 * The process is stopping: idle connections close now, and every other one once its answer is out (answers
 * from now on say `Connection: close`; one already under way closes as soon as it is done). Otherwise a
 * connection busy at the signal would stay open for the keep-alive time after its answer, and the server's
 * close would wait for it past the shutdown deadline.
 */
export function drainConnections(server: Server): void {
  draining.add(server);
  // Read when an answer ends; 0 would mean no limit at all.
  server.keepAliveTimeout = 1;
  server.closeIdleConnections();
}
