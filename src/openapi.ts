import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';

export const API_KEY_SCHEME = 'api-key';

export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
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
  return SwaggerModule.createDocument(app, config);
}

/** The OpenAPI document at /openapi.json and Swagger UI at /docs. */
export function serveOpenApi(app: INestApplication): void {
  SwaggerModule.setup('docs', app, () => buildOpenApiDocument(app), { jsonDocumentUrl: 'openapi.json', raw: ['json'] });
}
