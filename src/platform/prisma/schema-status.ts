import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { readMigrations } from './migrator.js';
import { PrismaService } from './prisma.service.js';

/** Postgres' "relation does not exist": the migrations table itself is missing. */
const UNDEFINED_TABLE = '42P01';

/**
 * Whether the database has every migration this build ships. A production role started against a database
 * without its schema says so at boot and in /readyz, with how to apply them, instead of answering every request
 * with an error.
 */
@Injectable()
export class SchemaStatus implements OnApplicationBootstrap {
  private readonly logger = new Logger(SchemaStatus.name);
  private shipped: Promise<string[]> | undefined;

  constructor(private readonly prisma: PrismaService) {}

  async onApplicationBootstrap(): Promise<void> {
    try {
      const pending = await this.pending();
      if (pending.length > 0) this.logger.error(describePending(pending));
    } catch (error) {
      this.logger.warn(`could not check the database schema at boot: ${(error as Error).message}`);
    }
  }

  /** The migrations of this build that the database has not applied, by name. */
  async pending(): Promise<string[]> {
    this.shipped ??= readMigrations().then((migrations) => migrations.map((migration) => migration.name));
    const shipped = await this.shipped;
    let applied: Set<string>;
    try {
      const rows = await this.prisma.pool.query<{ migration_name: string }>(
        'SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
      );
      applied = new Set(rows.rows.map((row) => row.migration_name));
    } catch (error) {
      if ((error as { code?: string }).code !== UNDEFINED_TABLE) throw error;
      applied = new Set();
    }
    return shipped.filter((name) => !applied.has(name));
  }
}

export function describePending(pending: string[]): string {
  return `the database schema is behind: ${pending.length} migration(s) pending (${pending.join(', ')}); apply them with \`node dist/migrate.js\` (npm run db:migrate)`;
}
