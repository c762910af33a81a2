import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { AppConfig } from '../../platform/config/app-config.js';
import { keepConnectionsOpen, stopServing } from '../../platform/http/connections.js';
import { answerParserErrorsWithEnvelope, markInternal } from '../../platform/http/ports.js';

/**
 * The catalogue API's own HTTP server on INTERNAL_PORT, in front of the same application as PORT: one process,
 * one set of connections and providers. Requests that come in here are marked, and a middleware (app.factory)
 * keeps each port to its own routes: /internal/* only here, never on PORT.
 */
@Injectable()
export class InternalServer implements OnApplicationShutdown {
  private server: Server | undefined;

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly config: AppConfig,
  ) {}

  /** Listens on `port` (0: any free port); answers the port. */
  async listen(port: number, host?: string): Promise<number> {
    const handle = this.adapterHost.httpAdapter.getInstance() as (request: IncomingMessage, response: unknown) => void;
    const server = createServer((request, response) => {
      markInternal(request);
      handle(request, response);
    });
    answerParserErrorsWithEnvelope(server);
    keepConnectionsOpen(server, this.config.HTTP_KEEP_ALIVE_SECONDS);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return (server.address() as { port: number }).port;
  }

  /** The process is stopping: no new connections, and the open ones close once answered (stopServing). */
  async stop(limitMs: number): Promise<void> {
    if (this.server) await stopServing(this.server, limitMs);
  }

  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (!server?.listening) return;
    server.closeIdleConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
