import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createApp } from './app.factory.js';
import { ConfigError, loadConfig, ROLES, type Role } from './config/app-config.js';
import { ensureDatabase, migrate } from './database/migrator.js';
import { startEmbeddedS3 } from './embedded-s3.js';
import { CatalogueRepository } from './repositories/catalogue.repository.js';
import { DemoService } from './services/demo.service.js';

/**
 * One entry for every role: `node dist/main.js api`, `node dist/main.js worker`, and with no role the local
 * all-in-one (migrations, API, worker and, without S3_ENDPOINT, an embedded S3 store) that `npm start` runs.
 */
async function main(): Promise<void> {
  const roleArgument = process.argv[2] ?? 'all';
  if (!(ROLES as readonly string[]).includes(roleArgument)) {
    throw new ConfigError([`the role must be one of api, worker (or none for the local all-in-one), not "${roleArgument}"`]);
  }
  const role = roleArgument as Role;
  const config = loadConfig();
  if (role !== 'all' && config.usesEmbeddedS3) {
    throw new ConfigError(['S3_ENDPOINT must be set for the api and worker roles (only the local all-in-one embeds S3)']);
  }
  const logger = new Logger('Main');

  if (role === 'all') {
    if (config.usesEmbeddedS3) {
      const s3 = await startEmbeddedS3(config);
      logger.log(`embedded S3 store on ${s3.endpoint}, data in ${config.DATA_DIR}`);
    }
    if (await ensureDatabase(config.DATABASE_URL)) logger.log('created the database');
    const { applied } = await migrate(config.DATABASE_URL);
    logger.log(applied.length ? `applied migrations: ${applied.join(', ')}` : 'database schema is up to date');
  }

  const app = await createApp(role, config);
  const port = role === 'worker' ? config.WORKER_HEALTH_PORT : config.PORT;
  await app.listen(port);
  logger.log(`${role === 'all' ? 'all-in-one' : role} listening on port ${port}`);

  if (role === 'all' && config.DEMO_SEED) await seedDemoOnce(app.get(DemoService), app.get(CatalogueRepository), logger);
}

/** On the first start against an empty database, seed the demo and print how to try it. */
async function seedDemoOnce(demo: DemoService, catalogue: CatalogueRepository, logger: Logger): Promise<void> {
  if (await catalogue.hasOrganisations()) return;
  const seed = await demo.seed();
  logger.log(`demo seeded; API key (shown once): ${seed.apiKey}`);
  process.stdout.write(`\nTry it:\n  ${seed.curl}\n\n`);
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(`startup failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  process.exit(1);
});

