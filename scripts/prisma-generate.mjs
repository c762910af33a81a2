// Prisma 7's `generate` first tries to download the schema engine, which fails offline. It does not run
// that engine, so pointing PRISMA_SCHEMA_ENGINE_BINARY at any existing file (node itself) lets it succeed.
import { spawnSync } from 'node:child_process';

const result = spawnSync('npx', ['--no-install', 'prisma', 'generate'], {
  stdio: ['ignore', process.stderr, 'inherit'],
  env: {
    ...process.env,
    PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? process.execPath,
    PRISMA_HIDE_UPDATE_MESSAGE: '1',
    CHECKPOINT_DISABLE: '1',
  },
});
process.exit(result.status ?? 1);
