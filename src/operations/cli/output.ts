import { ConfigError } from '../../platform/config/app-config.js';
import { AppError, isDependencyUnavailable, isSchemaMissing, type ErrorDetail } from '../../platform/errors.js';

/** Prints the command's one JSON document on stdout. */
export function printJson(document: unknown): void {
  process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
}

/** One line of JSON on stderr and a non-zero exit: what scripts around the CLI can rely on. */
export function printErrorAndExit(error: unknown): never {
  const described = describe(error);
  process.stderr.write(`${JSON.stringify({ error: described })}\n`);
  process.exit(['INVALID_ARGUMENT', 'INVALID_REQUEST', 'INVALID_SOURCE', 'CONFIG_INVALID'].includes(described.code) ? 2 : 1);
}

/** The error as the API would say it; `details` name each field that is wrong, when there are several. */
function describe(error: unknown): { code: string; message: string; details?: ErrorDetail[] } {
  if (error instanceof AppError) return { code: error.code, message: error.message, ...(error.details?.length ? { details: error.details } : {}) };
  if (error instanceof ConfigError) return { code: 'CONFIG_INVALID', message: error.problems.join('; ') };
  // Prisma's messages open with the call that failed ("Invalid `prisma.x.create()` invocation:"): the cause follows.
  const message = (error instanceof Error ? error.message : String(error)).replace(/^[\s\S]*?invocation:/, '').replace(/\s+/g, ' ').trim();
  if (isSchemaMissing(error)) {
    return { code: 'SERVICE_UNAVAILABLE', message: `the database schema is behind; apply the migrations with \`node dist/migrate.js\` (npm run db:migrate): ${message}` };
  }
  if (isDependencyUnavailable(error)) return { code: 'SERVICE_UNAVAILABLE', message: `a dependency could not be reached: ${message}` };
  return { code: 'INTERNAL', message };
}
