import type { INestApplicationContext } from '@nestjs/common';
import { ApiKeyService } from '../../catalogue/api-key.service.js';
import { AppError } from '../../platform/errors.js';
import { WebhooksService } from '../../notifications/webhooks.service.js';
import { DemoService } from '../demo.service.js';
import { OperatorService } from '../operator.service.js';
import { optionalInteger, requireFlag, requireWord, type ParsedCommand } from './arguments.js';

const USAGE =
  'commands: org create <name> | apikey create --org <orgId> [--name <n>] | apikey revoke <keyId> | ' +
  'job register --org <orgId> --workflow <wid> --job <jid> [--status <s>] [--inputs <s3uri>]... [--outputs <s3uri>]... | ' +
  'operations list [--status <s>] [--limit N] | demo | webhook create --org <orgId> --url <url> | webhook list --org <orgId> | ' +
  'webhook delete <webhookId> | webhook deliveries --org <orgId> [--limit N]';

/** What each command takes: its words (the command's own included) and its flags. */
const SHAPES: Record<string, { words: number; flags: string[] }> = {
  'org create': { words: 3, flags: [] },
  'apikey create': { words: 2, flags: ['org', 'name'] },
  'apikey revoke': { words: 3, flags: [] },
  'job register': { words: 2, flags: ['org', 'workflow', 'job', 'status', 'inputs', 'outputs'] },
  'operations list': { words: 2, flags: ['status', 'limit'] },
  demo: { words: 1, flags: [] },
  'webhook create': { words: 2, flags: ['org', 'url'] },
  'webhook list': { words: 2, flags: ['org'] },
  'webhook delete': { words: 3, flags: [] },
  'webhook deliveries': { words: 2, flags: ['org', 'limit'] },
};

/**
 * The command named by the first words, once its words and flags are checked against what it takes: what a
 * command would otherwise drop without a word is refused (`org create Acme Corp` would create "Acme",
 * `operations list --org x` would list every organisation's operations).
 */
export function commandOf(parsed: ParsedCommand): string {
  const { words, flags, lists } = parsed;
  const command = words[0] === 'demo' ? 'demo' : `${words[0] ?? ''} ${words[1] ?? ''}`.trim();
  const shape = SHAPES[command];
  if (!shape) throw new AppError('INVALID_ARGUMENT', `unknown command "${words.join(' ')}"; ${USAGE}`);
  const extra = words.slice(Math.max(shape.words, command.split(' ').length));
  if (extra.length) {
    throw new AppError('INVALID_ARGUMENT', `unexpected argument "${extra[0]}" for ${command} (quote a value that has spaces); ${USAGE}`);
  }
  const given = [...Object.entries(flags).filter(([, value]) => value !== undefined), ...Object.entries(lists).filter(([, values]) => values.length)].map(([name]) => name);
  const foreign = given.find((name) => !shape.flags.includes(name));
  if (foreign) throw new AppError('INVALID_ARGUMENT', `--${foreign} does not apply to ${command}; ${USAGE}`);
  const empty = given.find((name) => flags[name] === '' || lists[name]?.includes(''));
  if (empty) throw new AppError('INVALID_ARGUMENT', `--${empty} must not be empty`);
  return command;
}

/** Runs one operator command; its result is the JSON document the CLI prints. */
export async function runCommand(app: INestApplicationContext, parsed: ParsedCommand): Promise<unknown> {
  const { words, flags, lists } = parsed;
  const command = commandOf(parsed);
  const operator = app.get(OperatorService);
  switch (command) {
    case 'org create':
      return operator.createOrganisation(requireWord(words, 2, 'organisation name'));
    case 'apikey create': {
      const organisationId = requireFlag(flags, 'org');
      await operator.requireOrganisation(organisationId);
      const { id, key, prefix } = await app.get(ApiKeyService).create(organisationId, flags.name ?? 'default');
      return { id, key, prefix, organisation_id: organisationId };
    }
    case 'apikey revoke':
      return app.get(ApiKeyService).revoke(requireWord(words, 2, 'key id'));
    case 'job register':
      return operator.registerJob({
        organisationId: requireFlag(flags, 'org'),
        workflowId: requireFlag(flags, 'workflow'),
        jobId: requireFlag(flags, 'job'),
        status: flags.status,
        inputs: lists.inputs,
        outputs: lists.outputs,
      });
    case 'operations list':
      return operator.listOperations({ status: flags.status, limit: optionalInteger(flags, 'limit') });
    case 'demo':
      return app.get(DemoService).seed();
    case 'webhook create':
      return app.get(WebhooksService).create(requireFlag(flags, 'org'), requireFlag(flags, 'url'));
    case 'webhook list':
      return app.get(WebhooksService).list(requireFlag(flags, 'org'));
    case 'webhook delete':
      return app.get(WebhooksService).delete(requireWord(words, 2, 'webhook id'));
    case 'webhook deliveries':
      return app.get(WebhooksService).deliveries(requireFlag(flags, 'org'), optionalInteger(flags, 'limit'));
    default:
      throw new Error(`command ${command} has a shape but no handler`);
  }
}
