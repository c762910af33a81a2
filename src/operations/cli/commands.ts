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

/** Runs one operator command; its result is the JSON document the CLI prints. */
export async function runCommand(app: INestApplicationContext, { words, flags, lists }: ParsedCommand): Promise<unknown> {
  const operator = app.get(OperatorService);
  switch (`${words[0] ?? ''} ${words[1] ?? ''}`.trim()) {
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
      throw new AppError('INVALID_ARGUMENT', `unknown command "${words.join(' ')}"; ${USAGE}`);
  }
}
