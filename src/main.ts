import 'reflect-metadata';
import { type INestApplication, Logger, type Type } from '@nestjs/common';
import { createApp } from './app.factory.js';
import { type AppConfig, ConfigError, loadConfig, ROLES, type Role } from './config/app-config.js';
import { ensureDatabase, migrate } from './database/migrator.js';
import type { EmbeddedS3 } from './embedded-s3.js';
import { CatalogueRepository } from './repositories/catalogue.repository.js';
import { PackagingProcessor } from './processors/packaging.processor.js';
import { DemoService } from './services/demo.service.js';
import { ShutdownSignal } from './services/shutdown-signal.js';

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

  let embeddedS3: EmbeddedS3 | undefined;
  if (role === 'all') {
    if (config.usesEmbeddedS3) {
      // Loaded here only: the embedded store (s3rver) would add about 10 MiB to every api and worker process.
      const { startEmbeddedS3 } = await import('./embedded-s3.js');
      embeddedS3 = await startEmbeddedS3(config);
      logger.log(`embedded S3 store on ${embeddedS3.endpoint}, data in ${config.DATA_DIR}`);
    }
    if (await ensureDatabase(config.DATABASE_URL)) logger.log('created the database');
    const { applied } = await migrate(config.DATABASE_URL);
    logger.log(applied.length ? `applied migrations: ${applied.join(', ')}` : 'database schema is up to date');
  }

  const app = await createApp(role, config);
  handleShutdownSignals(app, config, logger, embeddedS3);
  const port = role === 'worker' ? config.WORKER_HEALTH_PORT : config.PORT;
  await app.listen(port);
  logger.log(`${role === 'all' ? 'all-in-one' : role} listening on port ${port}`);

  if (role === 'all' && config.DEMO_SEED) await seedDemoOnce(app.get(DemoService), app.get(CatalogueRepository), logger);
}

/**
 * SIGTERM or SIGINT: stop taking work, let running builds finish for SHUTDOWN_GRACE_SECONDS, then hand the
 * rest back to the queue; Nest then closes the workers, the queue, Prisma and the HTTP server. (Nest's own
 * enableShutdownHooks() has no grace deadline, hence this handler.)
 */
function handleShutdownSignals(app: INestApplication, config: AppConfig, logger: Logger, embeddedS3?: EmbeddedS3): void {
  // The worker's pieces exist only in the worker and all-in-one roles.
  const find = <T>(type: Type<T>): T | undefined => {
    try {
      return app.get(type, { strict: false });
    } catch {
      return undefined;
    }
  };
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.log(`${signal} received: finishing running builds for up to ${config.SHUTDOWN_GRACE_SECONDS} s`);
    const interrupt = setTimeout(() => {
      logger.warn('grace period over: handing running builds back to the queue');
      find(ShutdownSignal)?.interruptBuilds();
    }, config.SHUTDOWN_GRACE_SECONDS * 1000);
    // Whatever hangs, the process ends: an orchestrator would kill it anyway.
    setTimeout(() => process.exit(1), (config.SHUTDOWN_GRACE_SECONDS + 20) * 1000).unref();
    try {
      await find(PackagingProcessor)?.stopTakingWork();
      await app.close();
      await embeddedS3?.close();
      clearTimeout(interrupt);
      logger.log('stopped');
      process.exit(0);
    } catch (error) {
      logger.error(`shutdown failed: ${(error as Error).message}`);
      process.exit(1);
    }
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/** On the first start against an empty database, seed the demo and print how to try it. */
async function seedDemoOnce(demo: DemoService, catalogue: CatalogueRepository, logger: Logger): Promise<void> {
  if (await catalogue.hasOrganisations()) return;
  const seed = await demo.seed();
  logger.log(`demo seeded: workflow ${seed.workflowId}, job ${seed.jobId}`);
  // The key goes to the terminal only, never into the logs.
  process.stdout.write(`\nDemo API key (shown once): ${seed.apiKey}\nTry it:\n  ${seed.curl}\n\n`);
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(`startup failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  process.exit(1);
});

