import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Logger } from 'nestjs-pino';
import type { Server } from 'node:http';
import { CatalogueTokenGuard, unauthenticated } from '../catalogue/api/catalogue-token.guard.js';
import type { AppConfig, Role } from '../platform/config/app-config.js';
import { describeError, envelope } from '../platform/http/error-envelope.filter.js';
import { keepConnectionsOpen } from '../platform/http/connections.js';
import { answerParserErrorsWithEnvelope, isInternalPath, isInternalRequest, refuseMissingHost } from '../platform/http/ports.js';
import { httpMetrics } from '../platform/metrics/http-metrics.middleware.js';
import { requestIdOf } from '../platform/logging/logging.module.js';
import { MetricsService } from '../platform/metrics/metrics.service.js';
import { AppModule } from './app.module.js';

/** A job registration lists up to 10,000 sources per side and its tasks. */
const INTERNAL_BODY_LIMIT = '1mb';

/**
 * Everything on INTERNAL_PORT is the catalogue API's, and it answers 401 to every request without its token,
 * whatever the path (and to everything when no token is configured): only a holder of the token learns which
 * routes exist there. Runs before the port check, so an unknown route is 404 only to a holder of the token.
 * The controllers' guard checks the token again. These answers come before the request logger, so they carry
 * a request id and are logged here, as the guard's were.
 */
function requireCatalogueToken(token: CatalogueTokenGuard, logger: Logger) {
  return (request: Request, response: Response, next: NextFunction) => {
    if (!isInternalRequest(request) || token.accepts(request.headers.authorization)) return next();
    const { status, body } = describeError(unauthenticated());
    const requestId = requestIdOf(request, response);
    logger.warn({ reqId: requestId, req: { method: request.method, path: request.path }, res: { statusCode: status }, msg: 'catalogue request without its token refused' }, 'CatalogueToken');
    response.status(status).json(body);
  };
}

/**
 * Each port serves its own routes: the catalogue API (/internal/*) only on INTERNAL_PORT, the rest only on
 * PORT. Anything else is answered 404 as an unknown route would be.
 */
function keepPortsApart(request: Request, response: Response, next: NextFunction): void {
  if (isInternalRequest(request) === isInternalPath(request.path)) return next();
  response.status(404).json(envelope('NOT_FOUND', 'no such resource'));
}

/** Answers are what their Content-Type says: a browser must not read an error's JSON as a page of its own. */
function forbidTypeSniffing(_request: Request, response: Response, next: NextFunction): void {
  response.setHeader('X-Content-Type-Options', 'nosniff');
  next();
}

/**
 * JSON bodies, on the catalogue API only. The public routes take no body: one sent along is never read, so it
 * cannot decide the answer before the contract's checks do (a malformed body without a key is still 401). Nor
 * does a catalogue request without the token get its body read (up to 1 MiB): requireCatalogueToken has
 * answered it 401 before this runs, whatever the body.
 */
function parseJsonBodies() {
  const internalJson = express.json({ limit: INTERNAL_BODY_LIMIT });
  return (request: Request, response: Response, next: NextFunction) => (isInternalRequest(request) ? internalJson(request, response, next) : next());
}

/**
 * Builds the Nest application of a role, configured as in production (tests use this too). It does not
 * listen: the caller picks the ports.
 */
export async function createApp(role: Role, config: AppConfig): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(await AppModule.forRole(role, config), {
    bufferLogs: true,
    bodyParser: false,
  });
  app.useLogger(app.get(Logger));
  app.disable('x-powered-by');
  app.use(httpMetrics(app.get(MetricsService)));
  app.use(forbidTypeSniffing);
  app.use(refuseMissingHost);
  app.use(requireCatalogueToken(new CatalogueTokenGuard(config), app.get(Logger)));
  app.use(keepPortsApart);
  app.use(parseJsonBodies());
  // Only the API publishes documents; a worker does not load Swagger at all.
  if (role !== 'worker') (await import('./openapi.js')).serveOpenApi(app);
  answerParserErrorsWithEnvelope(app.getHttpServer() as Server);
  keepConnectionsOpen(app.getHttpServer() as Server, config.HTTP_KEEP_ALIVE_SECONDS);
  return app;
}
