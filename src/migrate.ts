import { loadConfig } from './platform/config/app-config.js';
import { ensureDatabase, migrate } from './platform/prisma/migrator.js';
import { printErrorAndExit } from './operations/cli/output.js';

// `npm run db:migrate`: creates the database when missing and applies pending migrations. It prints one JSON
// document, or one line of JSON error on stderr, as the CLI does: Node's process warnings (pg's about
// `sslmode=require`) are kept out of it.
process.removeAllListeners('warning');
try {
  const config = loadConfig();
  await ensureDatabase(config.DATABASE_URL);
  const result = await migrate(config.DATABASE_URL);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} catch (error) {
  printErrorAndExit(error);
}
