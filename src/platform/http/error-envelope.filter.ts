import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AppError, ERROR_STATUS, isDatabaseTimeout, isDependencyUnavailable, isSchemaMissing, type ErrorCode, type ErrorDetail } from '../errors.js';
import { malformedPathParameter } from './malformed-path.js';
import { isInternalRequest } from './ports.js';

export interface ErrorEnvelope {
  error: { code: string; message: string; details: ErrorDetail[] };
}

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'INVALID_REQUEST',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'NOT_FOUND',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  429: 'RATE_LIMITED',
  431: 'HEADERS_TOO_LARGE',
  503: 'SERVICE_UNAVAILABLE',
};

// Messages of our own making for errors raised by the framework, so that none of its wording leaks.
const MESSAGE_BY_CODE: Partial<Record<ErrorCode, string>> = {
  INVALID_REQUEST: 'the request is malformed',
  NOT_FOUND: 'no such resource',
  PAYLOAD_TOO_LARGE: 'the request body is too large',
  HEADERS_TOO_LARGE: 'the request headers are too large',
  SERVICE_UNAVAILABLE: 'a dependency of the service is unavailable; retry shortly',
  INTERNAL: 'an unexpected error occurred',
};

/** Seconds a client should wait after a 503 before trying again. */
const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

export function envelope(code: ErrorCode | string, message: string, details: ErrorDetail[] = []): ErrorEnvelope {
  return { error: { code, message, details } };
}

/** Turns any error into the contract's envelope. Causes are logged; callers see only our own words. */
export function describeError(exception: unknown): { status: number; body: ErrorEnvelope; retryAfter?: number } {
  if (exception instanceof AppError) {
    return {
      status: exception.status,
      body: envelope(exception.code, exception.message, exception.details),
      retryAfter: exception.retryAfterSeconds,
    };
  }
  if (isSchemaMissing(exception)) {
    return {
      status: 503,
      body: envelope('SERVICE_UNAVAILABLE', 'the service is not ready: its database migrations are pending'),
      retryAfter: UNAVAILABLE_RETRY_AFTER_SECONDS,
    };
  }
  if (isDependencyUnavailable(exception) || isDatabaseTimeout(exception)) {
    return {
      status: 503,
      body: envelope('SERVICE_UNAVAILABLE', MESSAGE_BY_CODE.SERVICE_UNAVAILABLE!),
      retryAfter: UNAVAILABLE_RETRY_AFTER_SECONDS,
    };
  }
  const status = httpStatusOf(exception);
  if (status !== undefined && status >= 400 && status < 500) {
    const code = CODE_BY_STATUS[status] ?? 'INVALID_REQUEST';
    return { status: ERROR_STATUS[code], body: envelope(code, MESSAGE_BY_CODE[code] ?? 'the request was refused') };
  }
  return { status: 500, body: envelope('INTERNAL', MESSAGE_BY_CODE.INTERNAL!) };
}

/** Status carried by Nest's HttpException, or by errors of Express and its body parsers. */
function httpStatusOf(exception: unknown): number | undefined {
  if (exception instanceof HttpException) return exception.getStatus();
  const candidate = exception as { status?: unknown; statusCode?: unknown } | null;
  const status = candidate?.status ?? candidate?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

@Catch()
export class ErrorEnvelopeFilter implements ExceptionFilter {
  private readonly logger = new Logger('HttpError');

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const request = host.switchToHttp().getRequest<Request>();
    const parameter = malformedPathParameter(exception, request.originalUrl ?? request.url);
    // The catalogue API names fields with INVALID_REQUEST (§5.3); the public API names path parameters with INVALID_PARAMETER.
    const refused = parameter && new AppError(isInternalRequest(request) ? 'INVALID_REQUEST' : 'INVALID_PARAMETER', `invalid path parameter: ${parameter.field}`, [parameter]);
    const { status, body, retryAfter } = describeError(refused || exception);
    if (status >= 500) {
      const error = exception as Error;
      this.logger.error(`${body.error.code}: ${error?.message ?? String(exception)}`, error?.stack);
    }
    if (response.headersSent) {
      response.end();
      return;
    }
    if (retryAfter !== undefined) response.setHeader('Retry-After', String(retryAfter));
    response.status(status).json(body);
  }
}
