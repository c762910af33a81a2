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
        ...Object.fromEntries(FLAGS.map((flag) => [flag, { type: 'string' as const }])),
        ...Object.fromEntries(REPEATED_FLAGS.map((flag) => [flag, { type: 'string' as const, multiple: true }])),
      },
    });
    const all = values as Record<string, string | string[] | undefined>;
    const flags = Object.fromEntries(FLAGS.map((flag) => [flag, all[flag] as string | undefined]));
    const lists = Object.fromEntries(REPEATED_FLAGS.map((flag) => [flag, (all[flag] as string[] | undefined) ?? []]));
    return { words: positionals, flags, lists };
  } catch (error) {
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
