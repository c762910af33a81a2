/** The error codes of the contract's envelope, with the HTTP status each one answers with. */
export const ERROR_STATUS = {
  INVALID_PARAMETER: 400,
  INVALID_ARGUMENT: 400,
  INVALID_REQUEST: 400,
  INVALID_SOURCE: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  JOB_NOT_FINISHED: 409,
  PAYLOAD_TOO_LARGE: 413,
  HEADERS_TOO_LARGE: 431,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  SERVICE_UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorDetail {
  field?: string;
  message: string;
}

/** An error whose message is safe to show a caller. Anything else is answered as INTERNAL and only logged. */
export class AppError extends Error {
  override name = 'AppError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

/** Thrown when Postgres, Redis or S3 cannot be reached in time: the caller gets 503 and may retry. */
export class DependencyUnavailableError extends Error {
  override name = 'DependencyUnavailableError';

  constructor(
    readonly dependency: 'postgres' | 'redis' | 's3',
    options?: ErrorOptions,
  ) {
    super(`${dependency} is unavailable`, options);
  }
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE',
  // Prisma: cannot reach the server, timed out, closed, pool timeout.
  'P1001', 'P1002', 'P1008', 'P1017', 'P2024',
]);
const UNAVAILABLE_MESSAGES = [
  /Stream isn't writeable/i,
  /Connection is closed/i,
  /Command timed out/i,
  /Reached the max retries per request/i,
  /Connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /Query read timeout/i,
  /Can't reach database server/i,
  // Prisma's P2028 when no connection could even begin a transaction in its maxWait (2 s): Postgres accepts
  // connections and does not answer (a failover, a partition). The same hang answers a single statement with
  // "Connection terminated due to connection timeout"; both are an outage, not a statement that runs too long.
  /Unable to start a transaction in the given time/i,
  /connect ECONNREFUSED/i,
  /the database system is (starting up|shutting down)/i,
  /terminating connection due to administrator command/i,
  /socket hang up/i,
];

/** Whether an error, or any error in its cause chain, means a dependency could not be reached. */
export function isDependencyUnavailable(error: unknown): boolean {
  for (let current = error, depth = 0; current && depth < 8; depth++) {
    if (current instanceof DependencyUnavailableError) return true;
    const candidate = current as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown; originalCode?: unknown };
    if (typeof candidate.code === 'string' && NETWORK_CODES.has(candidate.code)) return true;
    if (typeof candidate.originalCode === 'string' && NETWORK_CODES.has(candidate.originalCode)) return true;
    if (candidate.name === 'PrismaClientInitializationError' || candidate.name === 'TimeoutError') return true;
    if (typeof candidate.message === 'string' && UNAVAILABLE_MESSAGES.some((pattern) => pattern.test(candidate.message as string))) {
      return true;
    }
    current = candidate.cause;
  }
  return false;
}

/** Prisma's and Postgres' codes for a table or column that does not exist: the schema lacks migrations. */
/**
 * Postgres did not answer in time: a statement (or its wait for a lock) past statement_timeout, a lock not
 * available, an interactive transaction past its own timeout (Prisma). A caller is told 503 with Retry-After;
 * a build does not postpone on it as on an outage (a statement that always runs long would retry for ever).
 */
const TIMEOUT_CODES = new Set(['57014', '55P03', 'P2028']);

export function isDatabaseTimeout(error: unknown): boolean {
  for (let current = error, depth = 0; current && depth < 8; depth++) {
    const candidate = current as { code?: unknown; cause?: unknown; originalCode?: unknown; message?: unknown };
    if (typeof candidate.code === 'string' && TIMEOUT_CODES.has(candidate.code)) return true;
    if (typeof candidate.originalCode === 'string' && TIMEOUT_CODES.has(candidate.originalCode)) return true;
    if (typeof candidate.message === 'string' && /canceling statement due to statement timeout/i.test(candidate.message)) return true;
    current = candidate.cause;
  }
  return false;
}

// P1003 and 3D000: the database itself does not exist yet (`node dist/migrate.js` creates it).
const MISSING_SCHEMA_CODES = new Set(['P2021', 'P2022', '42P01', '42703', 'P1003', '3D000']);

/** Whether an error says that the database lacks part of the schema, or is missing (migrations not applied). */
export function isSchemaMissing(error: unknown): boolean {
  for (let current = error, depth = 0; current && depth < 8; depth++) {
    const candidate = current as { code?: unknown; cause?: unknown; originalCode?: unknown };
    if (typeof candidate.code === 'string' && MISSING_SCHEMA_CODES.has(candidate.code)) return true;
    if (typeof candidate.originalCode === 'string' && MISSING_SCHEMA_CODES.has(candidate.originalCode)) return true;
    current = candidate.cause;
  }
  return false;
}
