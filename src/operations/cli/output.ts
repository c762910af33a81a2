import { ConfigError } from '../../platform/config/app-config.js';
import { AppError } from '../../platform/errors.js';

/** Prints the command's one JSON document on stdout. */
export function printJson(document: unknown): void {
  process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
}

/** One line of JSON on stderr and a non-zero exit: what scripts around the CLI can rely on. */
export function printErrorAndExit(error: unknown): never {
  const { code, message } = describe(error);
  process.stderr.write(`${JSON.stringify({ error: { code, message } })}\n`);
  process.exit(code === 'INVALID_ARGUMENT' || code === 'CONFIG_INVALID' ? 2 : 1);
}

function describe(error: unknown): { code: string; message: string } {
  if (error instanceof AppError) return { code: error.code, message: error.message };
  if (error instanceof ConfigError) return { code: 'CONFIG_INVALID', message: error.problems.join('; ') };
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'INTERNAL', message: message.replace(/\s+/g, ' ').trim() };
}
