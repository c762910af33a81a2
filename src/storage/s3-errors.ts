/** How an S3 failure should be met: read or send again (soon, or later when throttled), or give up. */

export function httpStatusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

/**
 * S3 refuses to serve the object until someone acts, not for a moment: an archived object (Glacier, Deep
 * Archive, an archive tier of Intelligent-Tiering) that is not restored, or a key the service may not read.
 */
export function refusalOf(error: unknown): string | undefined {
  const code = (error as { Code?: string } | null)?.Code ?? (error as { name?: string } | null)?.name;
  if (code === 'InvalidObjectState') return 'is archived and must be restored before it can be read';
  if (code === 'AccessDenied' || httpStatusOf(error) === 403) return 'may not be read with the service\'s credentials';
  return undefined;
}

/** S3 asks the client to slow down: 503 SlowDown (S3's answer to too many requests on a prefix) or 429. */
export function isThrottled(error: unknown): boolean {
  const code = (error as { Code?: string } | null)?.Code ?? (error as { name?: string } | null)?.name;
  const status = httpStatusOf(error);
  return code === 'SlowDown' || status === 503 || status === 429;
}

/** Worth another read: the network (no HTTP answer at all), S3 busy or failing (5xx, 429, 408, RequestTimeout). */
export function isTransient(error: unknown): boolean {
  const status = httpStatusOf(error);
  const code = (error as { name?: string; Code?: string } | null)?.Code ?? (error as { name?: string } | null)?.name;
  return status === undefined || status >= 500 || status === 429 || status === 408 || code === 'RequestTimeout' || code === 'SlowDown';
}
