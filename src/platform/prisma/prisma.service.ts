import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { AppConfig } from '../config/app-config.js';
import { PrismaClient } from '../../generated/prisma/client.js';

/** Bounded waits so that an unreachable Postgres answers 503 in seconds instead of hanging a request. */
const CONNECT_TIMEOUT_MS = 3_000;
const STATEMENT_TIMEOUT_MS = 10_000;

/**
 * The one Prisma client of a process, and the one connection pool under it. Connections open lazily, so the
 * process boots while Postgres is down and recovers by itself when it returns.
 */
@Injectable()
export class PrismaService extends PrismaClient implements OnModuleDestroy {
  /**
   * The pool Prisma's adapter runs on. Repositories use it directly only for a hot read where Prisma's query
   * path costs ten times the query itself (see OperationRepository.findDownloadTarget).
   */
  readonly pool: pg.Pool;

  constructor(config: AppConfig) {
    const pool = new pg.Pool({
      connectionString: config.DATABASE_URL,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      statement_timeout: STATEMENT_TIMEOUT_MS,
      query_timeout: STATEMENT_TIMEOUT_MS + 1_000,
      max: 10,
    });
    super({ adapter: new PrismaPg(pool) });
    this.pool = pool;
    // An idle connection that Postgres drops must not crash the process: the pool opens a new one when needed.
    const logger = new Logger(PrismaService.name);
    pool.on('error', (error) => logger.warn(`idle Postgres connection lost: ${error.message}`));
  }

  async onModuleDestroy(): Promise<void> {
    try {
      await this.$disconnect();
    } finally {
      // The adapter leaves a pool it was given open; this service owns it.
      if (!this.pool.ended) await this.pool.end();
    }
  }
}
