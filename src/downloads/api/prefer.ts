/**
 * The `wait` preference of an RFC 7240 `Prefer` header, in seconds: `Prefer: wait=10` or
 * `Prefer: respond-async, wait=10`. Anything malformed or unknown is ignored (0), as the RFC says.
 */
export function preferredWaitSeconds(header: string | string[] | undefined): number {
  const values = Array.isArray(header) ? header : header === undefined ? [] : [header];
  for (const value of values) {
    for (const preference of value.split(',')) {
      const match = /^\s*wait\s*=\s*"?(\d{1,6})"?\s*(;.*)?$/i.exec(preference);
      if (match) return Number(match[1]);
    }
  }
  return 0;
}
