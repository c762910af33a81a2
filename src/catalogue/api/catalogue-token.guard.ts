import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { AppConfig } from '../../platform/config/app-config.js';
import { AppError } from '../../platform/errors.js';

/** The OpenAPI security scheme of the catalogue API. */
export const CATALOGUE_TOKEN_SCHEME = 'internal-token';

const digest = (bytes: string | Buffer) => createHash('sha256').update(bytes).digest();

/**
 * The catalogue API is for the platform's workflow engine: `Authorization: Bearer <INTERNAL_API_TOKEN>`.
 * Without a configured token it answers 401 to everything. Compared in constant time.
 */
@Injectable()
export class CatalogueTokenGuard implements CanActivate {
  private readonly expected: Buffer | undefined;

  constructor(config: AppConfig) {
    this.expected = config.INTERNAL_API_TOKEN === undefined ? undefined : digest(config.INTERNAL_API_TOKEN);
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.accepts(context.switchToHttp().getRequest<Request>().headers.authorization)) throw unauthenticated();
    return true;
  }

  /** Whether an Authorization header carries the token. */
  accepts(header: string | undefined): boolean {
    const match = /^bearer\s+(.+)$/is.exec((header ?? '').trim());
    // Node reads header bytes as Latin-1: those bytes are the token's UTF-8, whatever characters it has.
    return Boolean(this.expected && match && timingSafeEqual(digest(Buffer.from(match[1], 'latin1')), this.expected));
  }
}

export function unauthenticated(): AppError {
  return new AppError('UNAUTHENTICATED', 'the catalogue API needs Authorization: Bearer <INTERNAL_API_TOKEN>');
}
