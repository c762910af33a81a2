import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { INestApplicationContext } from '@nestjs/common';
import { CliModule } from './operations/cli/cli.module.js';
import { parseCommand } from './operations/cli/arguments.js';
import { commandOf, runCommand } from './operations/cli/commands.js';
import { printErrorAndExit, printJson } from './operations/cli/output.js';
import { loadConfig } from './platform/config/app-config.js';

/** `npm run -s cli -- <command>`: one JSON document on stdout, or a one-line JSON error on stderr. */

// stderr is reserved for the one-line JSON error that scripts parse: keep the AWS SDK's notice about
// future Node versions (engines says what we support) out of it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// Nor Node's process warnings, which its own listener prints to stderr: pg warns about `sslmode=require` in
// DATABASE_URL (the form managed Postgres services document) once per connection.
process.removeAllListeners('warning');

let app: INestApplicationContext | undefined;
try {
  const command = parseCommand(process.argv.slice(2));
  // A mistyped command is refused before anything connects.
  commandOf(command);
  const config = loadConfig();
  app = await NestFactory.createApplicationContext(CliModule.forConfig(config), { logger: false, abortOnError: false });
  printJson(await runCommand(app, command));
  await app.close();
} catch (error) {
  await app?.close().catch(() => undefined);
  printErrorAndExit(error);
}
