import type { INestApplication, Type } from '@nestjs/common';
import { ApiExcludeController, ApiOkResponse, ApiOperation, ApiResponse, ApiTags, DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { HealthController } from '../platform/health/health.controller.js';
import { MetricsController } from '../platform/metrics/metrics.controller.js';
import { ErrorEnvelopeDto } from '../platform/http/error-envelope.dto.js';
import { CATALOGUE_TOKEN_SCHEME, CatalogueTokenGuard, unauthenticated } from '../catalogue/api/catalogue-token.guard.js';
import { AppConfig } from '../platform/config/app-config.js';
import { describeError } from '../platform/http/error-envelope.filter.js';
import { CatalogueApiModule } from '../catalogue/api/catalogue-api.module.js';
import { DownloadsApiModule } from '../downloads/api/downloads-api.module.js';
import { API_KEY_SCHEME } from '../downloads/api/guards/api-key.guard.js';
import { HealthModule } from '../platform/health/health.module.js';


/** Applies method decorators to a controller's route, as writing them above the method would. */
function describeRoute<T>(controller: Type<T>, method: keyof T & string, ...decorators: MethodDecorator[]): void {
  const descriptor = Object.getOwnPropertyDescriptor(controller.prototype, method)!;
  for (const decorate of decorators) decorate(controller.prototype as object, method, descriptor);
}

let operationsRoutesDescribed = false;

/**
 * The health and metrics routes are served by workers too. Workers publish no document, so these routes carry
 * no Swagger decorators (which would make every worker load Swagger); the API describes them here, once,
 * before it builds its document.
 */
function describeOperationsRoutes(): void {
  if (operationsRoutesDescribed) return;
  operationsRoutesDescribed = true;
  ApiTags('operations')(HealthController);
  describeRoute(HealthController, 'healthz', ApiOperation({ summary: 'Liveness: the process is up' }), ApiOkResponse({ schema: { example: { status: 'ok' } } }));
  describeRoute(
    HealthController,
    'readyz',
    ApiOperation({ summary: 'Readiness: Postgres, Redis and the packages bucket answer' }),
    ApiOkResponse({ schema: { example: { status: 'ok', info: { postgres: { status: 'up' }, redis: { status: 'up' }, s3: { status: 'up' } } } } }),
    ApiResponse({ status: 503, type: ErrorEnvelopeDto, description: 'details name each dependency that is down' }),
  );
  ApiExcludeController()(MetricsController);
}

export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  describeOperationsRoutes();
  const config = new DocumentBuilder()
    .setTitle('Job download service')
    .setDescription(
      'Packages every input and output asset of a workflow job run into one ZIP in S3 and answers with a presigned URL. ' +
        'Every non-2xx answer is the error envelope {"error": {"code", "message", "details"}}.',
    )
    .setVersion('0')
    .addApiKey(
      { type: 'apiKey', in: 'header', name: 'Authorization', description: 'An API key, as `<key>` or `Bearer <key>`' },
      API_KEY_SCHEME,
    )
    .build();
  return SwaggerModule.createDocument(app, config, { include: [DownloadsApiModule, HealthModule] });
}

/** The catalogue API's own document, served on INTERNAL_PORT only. */
export function buildInternalOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Job download service: catalogue API')
    .setDescription(
      'For the platform\'s workflow engine, on INTERNAL_PORT: registers workflows, jobs and their tasks. A job registered anew ' +
        'with other sources, status, finished_at or tasks supersedes its live packages. Every non-2xx answer is the error envelope.',
    )
    .setVersion('0')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'INTERNAL_API_TOKEN' }, CATALOGUE_TOKEN_SCHEME)
    .build();
  return SwaggerModule.createDocument(app, config, { include: [CatalogueApiModule] });
}

/** The public document at /openapi.json and Swagger UI at /docs; the catalogue API's at /internal/openapi.json. */
export function serveOpenApi(app: INestApplication): void {
  SwaggerModule.setup('docs', app, () => buildOpenApiDocument(app), { jsonDocumentUrl: 'openapi.json', raw: ['json'] });
  let internal: OpenAPIObject | undefined;
  // Part of the catalogue API, so behind its token like the rest of it (without one, 401 to everything).
  const token = new CatalogueTokenGuard(app.get(AppConfig));
  type Answer = { status(code: number): Answer; json(body: unknown): void };
  app.getHttpAdapter().get('/internal/openapi.json', (request: { headers: { authorization?: string } }, response: Answer) => {
    if (!token.accepts(request.headers.authorization)) {
      const { status, body } = describeError(unauthenticated());
      return response.status(status).json(body);
    }
    internal ??= buildInternalOpenApiDocument(app);
    response.json(internal);
  });
}
