import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { INestApplicationContext } from '@nestjs/common';
import { CliModule } from './cli.module.js';
import { optionalInteger, parseCommand, requireFlag, requireWord, type ParsedCommand } from './cli/arguments.js';
import { printErrorAndExit, printJson } from './cli/output.js';
import { loadConfig } from './config/app-config.js';
import { AppError } from './errors.js';
import { ApiKeyService } from './services/api-key.service.js';
import { OperatorService } from './services/operator.service.js';
import { DemoService } from './services/demo.service.js';

const USAGE =
  'commands: org create <name> | apikey create --org <orgId> [--name <n>] | apikey revoke <keyId> | ' +
  'job register --org <orgId> --workflow <wid> --job <jid> [--status <s>] [--inputs <s3uri>] [--outputs <s3uri>] | ' +
  'operations list [--status <s>] [--limit N] | demo';

async function run(app: INestApplicationContext, { words, flags }: ParsedCommand): Promise<unknown> {
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
        inputs: flags.inputs,
        outputs: flags.outputs,
      });
    case 'operations list':
      return operator.listOperations({ status: flags.status, limit: optionalInteger(flags, 'limit') });
    case 'demo':
      return app.get(DemoService).seed();
    default:
      throw new AppError('INVALID_ARGUMENT', `unknown command "${words.join(' ')}"; ${USAGE}`);
  }
}

// stderr is reserved for the one-line JSON error that scripts parse: keep the AWS SDK's notice about
// future Node versions (engines says what we support) out of it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

let app: INestApplicationContext | undefined;
try {
  const command = parseCommand(process.argv.slice(2));
  const config = loadConfig();
  app = await NestFactory.createApplicationContext(CliModule.forConfig(config), { logger: false, abortOnError: false });
  printJson(await run(app, command));
  await app.close();
} catch (error) {
  await app?.close().catch(() => undefined);
  printErrorAndExit(error);
}
