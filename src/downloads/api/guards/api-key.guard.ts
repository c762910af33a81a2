import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { AppError } from '../../../platform/errors.js';
import { ApiKeyService, type Caller } from '../../../catalogue/api-key.service.js';

/** The OpenAPI security scheme of the public routes. */
export const API_KEY_SCHEME = 'api-key';

export type AuthenticatedRequest = Request & { caller?: Caller };

// `<key>` or `Bearer <key>`; a key is one token of printable characters.
const AUTHORIZATION = /^(?:bearer\s+)?([\x21-\x7e]{1,256})$/i;

/** The download routes need a known, unrevoked key; the caller is attached to the request. */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(private readonly apiKeys: ApiKeyService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const match = AUTHORIZATION.exec((request.headers.authorization ?? '').trim());
    if (!match || /^bearer$/i.test(match[1])) {
      throw new AppError('UNAUTHENTICATED', 'an API key is required in the Authorization header');
    }
    request.caller = await this.apiKeys.authenticate(match[1]);
    return true;
  }
}
