import 'reflect-metadata';
import { type INestApplication, Logger } from '@nestjs/common';
import type { Server } from 'node:http';
import { CatalogueRepository } from '../catalogue/catalogue.repository.js';
import { ensureLocalWebhookKey } from '../notifications/webhook-secrets.js';
import { DemoService } from '../operations/demo.service.js';
import { ensureDatabase, migrate } from '../platform/prisma/migrator.js';
import { type AppConfig, ConfigError, loadConfig, ROLES, type Role } from '../platform/config/app-config.js';
import { isDependencyUnavailable } from '../platform/errors.js';
import type { EmbeddedS3 } from '../storage/embedded-s3.js';
import { OperationEvents } from '../downloads/operation-events.js';
import { drainConnections, stopServing } from '../platform/http/connections.js';
import { QueueWorkers } from '../platform/queues/queue-workers.js';
import { createApp } from './app.factory.js';

/**
 * At SIGTERM, how long the API's requests under way get to be answered before their connections are cut and
 * Postgres and Redis close. Its requests are short; the longest, `Prefer: wait`, is answered at once.
 */
const REQUEST_DRAIN_MS = 10_000;

/** Starts the process of a role and keeps it running until SIGTERM or SIGINT. */
export async function start(roleArgument: string): Promise<void> {
  try {
    await run(roleArgument);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
    } else if (isDependencyUnavailable(error)) {
      // An expected condition (Postgres, Redis or S3 not up yet): its cause, not a stack.
      const cause = (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').trim();
      process.stderr.write(`startup failed: a dependency could not be reached (check DATABASE_URL, REDIS_URL, S3_ENDPOINT): ${cause}\n`);
    } else {
      process.stderr.write(`startup failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    }
    process.exit(1);
  }
}

async function run(roleArgument: string): Promise<void> {
  if (!(ROLES as readonly string[]).includes(roleArgument)) {
    throw new ConfigError([`the role must be one of api, worker (or none for the local all-in-one), not "${roleArgument}"`]);
  }
  const role = roleArgument as Role;
  const config = loadConfig();
  if (role === 'all' && config.DEMO_SEED && config.demoBucketProblem) {
    throw new ConfigError([`${config.demoBucketProblem}; or set DEMO_SEED=false`]);
  }
  if (role !== 'all' && config.usesEmbeddedS3) {
    throw new ConfigError(['S3_ENDPOINT must be set for the api and worker roles (only the local all-in-one embeds S3)']);
  }
  const logger = new Logger('Main');

  let embeddedS3: EmbeddedS3 | undefined;
  if (role === 'all') {
    if (config.usesEmbeddedS3) {
      // Loaded here only: the api and worker roles never carry the embedded store (s3rver).
      const { startEmbeddedS3 } = await import('../storage/embedded-s3.js');
      embeddedS3 = await startEmbeddedS3(config);
      logger.log(`embedded S3 store on ${embeddedS3.endpoint}, data in ${config.DATA_DIR}`);
    }
    // Webhook secrets are encrypted under WEBHOOK_SECRET_KEY; with the embedded S3, a generated key is kept in DATA_DIR.
    await ensureLocalWebhookKey(config);
    if (await ensureDatabase(config.DATABASE_URL)) logger.log('created the database');
    const { applied } = await migrate(config.DATABASE_URL);
    logger.log(applied.length ? `applied migrations: ${applied.join(', ')}` : 'database schema is up to date');
  }

  const app = await createApp(role, config);
  // Once the application's logger (LOG_LEVEL) is in place.
  if (!config.WEBHOOK_SECRET_KEY && !config.usesEmbeddedS3) {
    logger.warn('WEBHOOK_SECRET_KEY is not set: webhook endpoints cannot be created, and no webhook is delivered');
  }
  for (const [name, value] of [['WEBHOOK_SECRET_KEY', config.WEBHOOK_SECRET_KEY], ['INTERNAL_API_TOKEN', config.INTERNAL_API_TOKEN]] as const) {
    if (value?.startsWith('change-me')) logger.warn(`${name} is docker-compose.yml's example value, which anyone can read: set your own beyond a local trial`);
  }
  const httpServer = app.getHttpServer() as Server;
  // What a signal starts before the application closes: the workers' drains (they stop taking builds at
  // once), and the HTTP side. A worker's port serves its health checks only, and they must go on answering
  // while its builds finish; the API stops listening and answers what it has while Postgres is still open.
  const beforeClose: Array<() => void | Promise<void>> = [
    () => app.get(QueueWorkers, { strict: false }).startDraining(),
    ...(role === 'worker'
      ? [() => drainConnections(httpServer)]
      : [() => app.get(OperationEvents, { strict: false }).stopWaiting(), () => stopServing(httpServer, REQUEST_DRAIN_MS)]),
  ];
  stopOnSignals(app, config, logger, beforeClose, embeddedS3);
  const port = role === 'worker' ? config.WORKER_HEALTH_PORT : config.PORT;
  await app.listen(port);
  logger.log(`${role === 'all' ? 'all-in-one' : role} listening on port ${port}`);
  if (role !== 'worker') {
    const { InternalServer } = await import('../catalogue/api/internal-server.js');
    const internalServer = app.get(InternalServer);
    await internalServer.listen(config.INTERNAL_PORT);
    beforeClose.push(() => internalServer.stop(REQUEST_DRAIN_MS));
    logger.log(`catalogue API listening on port ${config.INTERNAL_PORT}${config.INTERNAL_API_TOKEN ? '' : ' (no INTERNAL_API_TOKEN set: it answers 401)'}`);
  }

  if (role === 'all' && config.DEMO_SEED) await seedDemoOnce(app.get(DemoService), app.get(CatalogueRepository), logger);
}

/**
 * SIGTERM or SIGINT: close the application. Workers stop taking jobs and give running builds
 * SHUTDOWN_GRACE_SECONDS before handing them back (PackagingWorker); meanwhile the API stops taking
 * connections and answers the requests it has (REQUEST_DRAIN_MS at most) while Postgres and Redis are still
 * open; then the queues, Redis and Prisma close. Whatever hangs, the process ends: an orchestrator would kill it anyway.
 */
function stopOnSignals(app: INestApplication, config: AppConfig, logger: Logger, beforeClose: Array<() => void | Promise<void>>, embeddedS3?: EmbeddedS3): void {
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) {
      // A signal can come twice: Ctrl-C reaches a worker both from the terminal and through its launcher, and
      // supervisors repeat themselves. Were it left to its default action it would kill the process in the
      // middle of handing its builds back; the grace period and the deadline below already bound the stop.
      logger.log(`${signal} received again: still stopping`);
      return;
    }
    stopping = true;
    logger.log(`${signal} received: finishing running builds for up to ${config.SHUTDOWN_GRACE_SECONDS} s`);
    setTimeout(() => process.exit(1), (config.SHUTDOWN_GRACE_SECONDS + 20) * 1000).unref();
    try {
      await Promise.all(beforeClose.map((step) => step()));
      await app.close();
      await embeddedS3?.close();
      logger.log('stopped');
      process.exit(0);
    } catch (error) {
      logger.error(`shutdown failed: ${(error as Error).message}`);
      process.exit(1);
    }
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** On the first start against an empty database, seed the demo and print how to try it. */
async function seedDemoOnce(demo: DemoService, catalogue: CatalogueRepository, logger: Logger): Promise<void> {
  if (await catalogue.hasOrganisations()) return;
  const seed = await demo.seed();
  logger.log(`demo seeded: workflow ${seed.workflowId}, job ${seed.jobId}`);
  // The key goes to the terminal only, never into the logs.
  process.stdout.write(`\nDemo API key (shown once): ${seed.apiKey}\nTry it:\n  ${seed.curl}\n\n`);
}
