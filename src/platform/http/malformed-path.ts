import { HttpException } from '@nestjs/common';
import type { ErrorDetail } from '../errors.js';

/** The path segments that name the parameter after them, in every route of both ports. */
const PARAMETER_AFTER: Record<string, string> = {
  workflows: 'workflow_id',
  jobs: 'job_id',
  tasks: 'task_id',
  organisations: 'org_id',
  webhooks: 'webhook_id',
};

/**
 * Two malformed path parameters never reach the guards that name them: one Express cannot percent-decode
 * (it refuses the request while routing) and an empty one (no route matches `/workflows//jobs/...`). Given
 * the error and the request's path, this names the parameter, so that the caller gets a 400 saying which,
 * as for any other malformed parameter, instead of a bare 400 or a 404.
 */
export function malformedPathParameter(exception: unknown, url: string): ErrorDetail | undefined {
  // Nest hands the router's URIError over as a BadRequestException; a bare URIError is named, not instanceof,
  // as decodeURIComponent's realm need not be this module's.
  const status = exception instanceof HttpException ? exception.getStatus() : undefined;
  const undecodable = status === 400 || (exception as Error | null)?.name === 'URIError';
  if (!undecodable && status !== 404) return undefined;
  const segments = url.split('?')[0].split('/');
  for (let i = 1; i < segments.length; i++) {
    const field = PARAMETER_AFTER[segments[i - 1]];
    if (!field) continue;
    if (segments[i] === '' && i < segments.length - 1) return { field, message: `${field} must not be empty` };
    if (undecodable && !decodes(segments[i])) return { field, message: `${field} is not valid percent-encoding` };
  }
  return undefined;
}

function decodes(segment: string): boolean {
  try {
    decodeURIComponent(segment);
    return true;
  } catch {
    return false;
  }
}
