import { parseArgs } from 'node:util';
import { AppError } from '../../platform/errors.js';

export interface ParsedCommand {
  words: string[];
  flags: Record<string, string | undefined>;
  /** Flags that may be given more than once, every value in order. */
  lists: Record<string, string[]>;
}

const FLAGS = ['org', 'name', 'workflow', 'job', 'status', 'limit', 'url'] as const;
const REPEATED_FLAGS = ['inputs', 'outputs'] as const;

/** `org create acme --name x` → words [org, create, acme], flags {name: x}. Unknown flags are refused. */
export function parseCommand(argv: string[]): ParsedCommand {
  try {
    const { positionals, values } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        // Every flag is read as a list: parseArgs keeps the last of a repeated one silently, and
        // `apikey create --org a --org b` must not issue a key for b.
        ...Object.fromEntries([...FLAGS, ...REPEATED_FLAGS].map((flag) => [flag, { type: 'string' as const, multiple: true }])),
      },
    });
    const all = values as Record<string, string[] | undefined>;
    const repeated = FLAGS.find((flag) => (all[flag]?.length ?? 0) > 1);
    if (repeated) throw new AppError('INVALID_ARGUMENT', `--${repeated} is given more than once`);
    const flags = Object.fromEntries(FLAGS.map((flag) => [flag, all[flag]?.[0]]));
    const lists = Object.fromEntries(REPEATED_FLAGS.map((flag) => [flag, all[flag] ?? []]));
    return { words: positionals, flags, lists };
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new AppError('INVALID_ARGUMENT', (error as Error).message);
  }
}

export function requireFlag(flags: ParsedCommand['flags'], name: string): string {
  const value = flags[name];
  if (value === undefined || value === '') throw new AppError('INVALID_ARGUMENT', `--${name} is required`);
  return value;
}

export function requireWord(words: string[], index: number, what: string): string {
  const value = words[index];
  if (value === undefined || value === '') throw new AppError('INVALID_ARGUMENT', `${what} is required`);
  return value;
}

export function optionalInteger(flags: ParsedCommand['flags'], name: string): number | undefined {
  const value = flags[name];
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new AppError('INVALID_ARGUMENT', `--${name} must be a positive integer`);
  return Number(value);
}
