import type { Provider, Type } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { DownloadController } from './controllers/download.controller.js';
import { ApiKeyGuard } from './middleware/api-key.guard.js';
import { PathParamsGuard } from './middleware/path-params.guard.js';
import { RateLimitGuard } from './middleware/rate-limit.guard.js';
import { OperationEventsRepository } from './repositories/operation-events.repository.js';
import { RateLimitRepository } from './repositories/rate-limit.repository.js';
import { ApiKeyService } from './services/api-key.service.js';
import { DemoService } from './services/demo.service.js';
import { DownloadService } from './services/download.service.js';
import { OperatorService } from './services/operator.service.js';
import { RateLimiter } from './services/rate-limiter.service.js';

/*
 * What a process that serves the API adds to AppModule. AppModule imports this file only for the api and
 * all-in-one roles, so a worker never loads the download route, its guards, its DTOs or Swagger (about 10 MiB
 * of a worker's memory, which BENCHMARKS.md counts against its target).
 */

export const API_PROVIDERS: Provider[] = [
  OperationEventsRepository,
  RateLimitRepository,
  RateLimiter,
  ApiKeyService,
  DownloadService,
  // Guards run in this order, as the contract checks: path parameters, key, rate limit.
  { provide: APP_GUARD, useClass: PathParamsGuard },
  { provide: APP_GUARD, useClass: ApiKeyGuard },
  { provide: APP_GUARD, useClass: RateLimitGuard },
];

export const API_CONTROLLERS: Type[] = [DownloadController];

/** The local all-in-one seeds the demo on its first start. */
export const DEMO_PROVIDERS: Provider[] = [ApiKeyService, OperatorService, DemoService];
