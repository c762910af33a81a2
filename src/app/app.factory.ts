import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module.js';
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { envelope } from '../platform/http/error-envelope.filter.js';
import { httpMetrics } from '../platform/metrics/http-metrics.middleware.js';
import { MetricsService } from '../platform/metrics/metrics.service.js';
import type { AppConfig, Role } from '../platform/config/app-config.js';

/**
 * Requests that Node's HTTP parser refuses (oversized headers or URL, malformed request lines) never reach
 * Express; they still get the envelope. Node would otherwise answer a bare 400 or 431.
 */
function answerParserErrorsWithEnvelope(server: Server): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable) return socket.destroy();
    const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
    const [status, reason] = tooLarge ? [431, 'Request Header Fields Too Large'] : [400, 'Bad Request'];
    const body = JSON.stringify(
      envelope(tooLarge ? 'HEADERS_TOO_LARGE' : 'INVALID_REQUEST', tooLarge ? 'the request headers are too large' : 'the request is malformed'),
    );
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}

/** Request bodies are not part of the API; anything larger than this is refused with 413. */
const BODY_LIMIT = '16kb';

/**
 * Builds the Nest application of a role, configured as in production (tests use this too). It does not
 * listen: the caller picks the port.
 */
export async function createApp(role: Role, config: AppConfig): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(await AppModule.forRole(role, config), {
    bufferLogs: true,
    bodyParser: false,
  });
  app.useLogger(app.get(Logger));
  app.disable('x-powered-by');
  app.use(httpMetrics(app.get(MetricsService)));
  app.useBodyParser('json', { limit: BODY_LIMIT });
  // Only the API publishes the document; a worker does not load Swagger at all.
  if (role !== 'worker') (await import('./openapi.js')).serveOpenApi(app);
  answerParserErrorsWithEnvelope(app.getHttpServer() as Server);
  return app;
}
