/**
 * The `wait` preference of an RFC 7240 `Prefer` header, in seconds: `Prefer: wait=10` or
 * `Prefer: respond-async, wait=10`. Anything malformed or unknown is ignored (0), as the RFC says. A wait
 * longer than the service allows is still a wait: the caller caps it (PREFER_WAIT_MAX_SECONDS), so any number
 * of digits is read.
 */
export function preferredWaitSeconds(header: string | string[] | undefined): number {
  const values = Array.isArray(header) ? header : header === undefined ? [] : [header];
  for (const value of values) {
    for (const preference of value.split(',')) {
      const match = /^\s*wait\s*=\s*"?(\d+)"?\s*(;.*)?$/i.exec(preference);
      if (match) return Math.min(Number(match[1]), Number.MAX_SAFE_INTEGER);
    }
  }
  return 0;
}
