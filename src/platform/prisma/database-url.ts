/**
 * DATABASE_URL as pg reads it (pg-connection-string). A Unix socket may be named with an empty host and a
 * `host` parameter (`postgres://user@/db?host=/cloudsql/project:region:instance`), which `new URL` refuses:
 * pg parses it with a placeholder host, and so does this.
 */
export function parseDatabaseUrl(value: string): URL {
  try {
    return new URL(value);
  } catch (error) {
    const withHost = value.replace(/^(postgres(?:ql)?:\/\/(?:[^@/?#]*@)?)(?=[/?#]|$)/i, '$1socket');
    if (withHost === value) throw error;
    return new URL(withHost);
  }
}

/** Whether `value` is a postgres:// or postgresql:// URL that pg can read. */
export function isDatabaseUrl(value: string): boolean {
  try {
    return ['postgres:', 'postgresql:'].includes(parseDatabaseUrl(value).protocol);
  } catch {
    return false;
  }
}

/** The name of the database the URL leads to. */
export function databaseNameOf(value: string): string {
  return decodeURIComponent(parseDatabaseUrl(value).pathname.replace(/^\//, ''));
}

/** The same URL, leading to another database of the same server: only its path changes. */
export function withDatabase(value: string, database: string): string {
  return value.replace(/^(postgres(?:ql)?:\/\/[^/?#]*)(\/[^?#]*)?/i, `$1/${encodeURIComponent(database)}`);
}
