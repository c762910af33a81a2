import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ensureDatabase, migrate, MigrationError, MIGRATIONS_DIR, readMigrations } from '../src/platform/prisma/migrator.js';
import { uniqueId } from './support/harness.js';

const base = new URL(process.env.DATABASE_URL!);

function urlFor(database: string): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  return url.toString();
}

async function query<T extends pg.QueryResultRow>(databaseUrl: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

describe('the migrator', () => {
  const databases: string[] = [];
  const freshDatabase = async () => {
    const name = `${process.env.TEST_RUN_ID}_${uniqueId('m').replace('-', '_')}`;
    databases.push(name);
    await ensureDatabase(urlFor(name));
    return urlFor(name);
  };

  afterAll(async () => {
    for (const name of databases) await query(urlFor('postgres'), `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  });

  it('applies every migration to a fresh database and records it as Prisma Migrate does', async () => {
    const sut = await freshDatabase();
    const files = await readMigrations();

    const result = await migrate(sut);

    expect(result.applied).toEqual(files.map((file) => file.name));
    const rows = await query<{ migration_name: string; checksum: string; finished_at: Date | null; applied_steps_count: number }>(
      sut,
      'SELECT migration_name, checksum, finished_at, applied_steps_count FROM _prisma_migrations ORDER BY migration_name',
    );
    expect(rows.map((row) => row.migration_name)).toEqual(files.map((file) => file.name));
    for (const row of rows) {
      const sql = await readFile(path.join(MIGRATIONS_DIR, row.migration_name, 'migration.sql'));
      expect(row.checksum).toBe(createHash('sha256').update(sql).digest('hex'));
      expect(row.finished_at).not.toBeNull();
      expect(row.applied_steps_count).toBe(1);
    }
    const tables = await query<{ table_name: string }>(
      sut,
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name",
    );
    expect(tables.map((t) => t.table_name)).toEqual([
      '_prisma_migrations', 'api_keys', 'download_operations', 'jobs', 'organisations', 'package_objects', 'workflows',
    ]);
  });

  it('does nothing when run again', async () => {
    const sut = await freshDatabase();
    await migrate(sut);

    const again = await migrate(sut);

    expect(again.applied).toEqual([]);
    expect(again.alreadyApplied).toHaveLength((await readMigrations()).length);
    const [{ count }] = await query<{ count: string }>(sut, 'SELECT count(*) FROM _prisma_migrations');
    expect(Number(count)).toBe((await readMigrations()).length);
  });

  it('applies each migration exactly once when replicas start together', async () => {
    const sut = await freshDatabase();

    const results = await Promise.all([migrate(sut), migrate(sut), migrate(sut)]);

    const appliedCounts = results.map((result) => result.applied.length).sort();
    expect(appliedCounts).toEqual([0, 0, (await readMigrations()).length]);
    const [{ count }] = await query<{ count: string }>(sut, 'SELECT count(*) FROM _prisma_migrations');
    expect(Number(count)).toBe((await readMigrations()).length);
  });

  it('refuses to run when an applied migration file has changed', async () => {
    const sut = await freshDatabase();
    const folder = await mkdtemp(path.join(tmpdir(), 'migrations-'));
    try {
      await cp(MIGRATIONS_DIR, folder, { recursive: true });
      await migrate(sut, folder);
      const [first] = await readMigrations(folder);
      await writeFile(path.join(folder, first.name, 'migration.sql'), `${first.sql}\n-- edited afterwards\n`);

      await expect(migrate(sut, folder)).rejects.toThrow(MigrationError);
      await expect(migrate(sut, folder)).rejects.toThrow(`Migration ${first.name} was changed after it was applied`);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  it('rolls a failing migration back and names it', async () => {
    const sut = await freshDatabase();
    const folder = await mkdtemp(path.join(tmpdir(), 'migrations-'));
    try {
      await cp(MIGRATIONS_DIR, folder, { recursive: true });
      const { mkdir } = await import('node:fs/promises');
      await mkdir(path.join(folder, '99990101000000_broken'));
      await writeFile(path.join(folder, '99990101000000_broken', 'migration.sql'), 'CREATE TABLE broken (id int);\nSELECT no_such_column FROM broken;');

      await expect(migrate(sut, folder)).rejects.toThrow('Migration 99990101000000_broken failed');

      const tables = await query<{ table_name: string }>(sut, "SELECT table_name FROM information_schema.tables WHERE table_name = 'broken'");
      expect(tables).toEqual([]);
      const recorded = await query<{ migration_name: string }>(sut, "SELECT migration_name FROM _prisma_migrations WHERE migration_name LIKE '%broken'");
      expect(recorded).toEqual([]);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});
