import { defineConfig } from 'prisma/config';

// The service applies migrations with its own migrator (src/database/migrator.ts); this file tells the Prisma CLI
// where the schema and the SQL migrations live, and which database `prisma migrate status` should inspect.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: {
    url: process.env.DATABASE_URL ?? 'postgresql://postgres:postgres@127.0.0.1:5432/job_downloads',
  },
});
