import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module.js';
import { httpMetrics } from './middleware/http-metrics.middleware.js';
import { serveOpenApi } from './openapi.js';
import { MetricsService } from './services/metrics.service.js';
import type { AppConfig, Role } from './config/app-config.js';

/** Request bodies are not part of the API; anything larger than this is refused with 413. */
const BODY_LIMIT = '16kb';

/**
 * Builds the Nest application of a role, configured as in production (tests use this too). It does not
 * listen: the caller picks the port.
 */
export async function createApp(role: Role, config: AppConfig): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRole(role, config), {
    bufferLogs: true,
    bodyParser: false,
  });
  app.useLogger(app.get(Logger));
  app.disable('x-powered-by');
  app.use(httpMetrics(app.get(MetricsService)));
  app.useBodyParser('json', { limit: BODY_LIMIT });
  if (role !== 'worker') serveOpenApi(app);
  return app;
}
