import type { Server } from 'node:http';

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
}
