import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { connect, createServer, type Socket } from 'node:net';
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

/**
 * A gateway that, like a PgBouncer configured with one database, relays connections to that database only and
 * closes any other at its startup message (protocol 3.0: length, version, then name and value pairs).
 */
async function oneDatabaseGateway(database: string): Promise<{ port: number; refused: string[]; close(): Promise<void> }> {
  const refused: string[] = [];
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  };
  const server = createServer((client) => {
    track(client);
    client.once('data', (startup: Buffer) => {
      const fields = startup.subarray(8, startup.readInt32BE(0)).toString('utf8').split('\0');
      const wanted = fields[fields.indexOf('database') + 1];
      if (wanted !== database) {
        refused.push(wanted);
        client.destroy();
        return;
      }
      const upstream = connect(Number(base.port || 5432), base.hostname);
      track(upstream);
      upstream.write(startup);
      client.pipe(upstream).pipe(client);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    refused,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
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
      '_prisma_migrations', 'api_keys', 'download_operations', 'jobs', 'organisations', 'package_objects', 'tasks',
      'webhook_deliveries', 'webhook_endpoints', 'webhook_events', 'workflows',
    ]);
  });

  it('migrates a database that can be reached alone, as through a PgBouncer that knows only it', async () => {
    const url = await freshDatabase();
    const gateway = await oneDatabaseGateway(new URL(url).pathname.slice(1));
    try {
      const viaGateway = new URL(url);
      viaGateway.hostname = '127.0.0.1';
      viaGateway.port = String(gateway.port);
      expect(await ensureDatabase(viaGateway.toString())).toBe(false);
      expect((await migrate(viaGateway.toString())).applied).toEqual((await readMigrations()).map((migration) => migration.name));
      expect(gateway.refused).toEqual([]);
    } finally {
      await gateway.close();
    }
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

  it('creates a missing database once when replicas start together, failing none of them', async () => {
    const name = `${process.env.TEST_RUN_ID}_${uniqueId('m').replace('-', '_')}`;
    databases.push(name);

    const created = await Promise.all([ensureDatabase(urlFor(name)), ensureDatabase(urlFor(name)), ensureDatabase(urlFor(name)), ensureDatabase(urlFor(name))]);

    expect(created.filter(Boolean)).toEqual([true]);
    expect(await query(urlFor(name), 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
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

  it('moves every registered job from its two prefix columns to lists of sources, losing none', async () => {
    const sut = await freshDatabase();
    const folder = await mkdtemp(path.join(tmpdir(), 'migrations-'));
    try {
      // The schema as it was before tasks and lists of sources, with a job registered in it.
      await cp(MIGRATIONS_DIR, folder, { recursive: true });
      const all = await readMigrations(folder);
      const sourcesMigration = all.findIndex((migration) => migration.name.endsWith('_tasks_and_sources'));
      for (const later of all.slice(sourcesMigration)) await rm(path.join(folder, later.name), { recursive: true });
      await migrate(sut, folder);
      await query(sut, "INSERT INTO organisations (id, name) VALUES ('00000000-0000-4000-8000-000000000001', 'o')");
      await query(sut, "INSERT INTO workflows (id, organisation_id) VALUES ('wf', '00000000-0000-4000-8000-000000000001')");
      await query(sut, "INSERT INTO jobs (workflow_id, job_id, status, inputs_uri, outputs_uri) VALUES ('wf', 'job', 'completed', 's3://a/in/', 's3://a/out/')");
      await query(sut, "INSERT INTO download_operations (id, workflow_id, job_id, status) VALUES ('00000000-0000-4000-8000-000000000002', 'wf', 'job', 'ready')");

      await migrate(sut);

      const [job] = await query<{ inputs: string[]; outputs: string[] }>(sut, "SELECT inputs, outputs FROM jobs WHERE job_id = 'job'");
      expect(job).toEqual({ inputs: ['s3://a/in/'], outputs: ['s3://a/out/'] });
      const [operation] = await query<{ task_id: string | null; status: string }>(sut, 'SELECT task_id, status FROM download_operations');
      expect(operation).toEqual({ task_id: null, status: 'ready' });
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});
