// Prisma 7's `generate` first tries to download the schema engine, which fails offline. It does not run
// that engine, so pointing PRISMA_SCHEMA_ENGINE_BINARY at any existing file (node itself) lets it succeed.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const result = spawnSync('npx', ['--no-install', 'prisma', 'generate'], {
  stdio: ['ignore', process.stderr, 'inherit'],
  env: {
    ...process.env,
    PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? process.execPath,
    PRISMA_HIDE_UPDATE_MESSAGE: '1',
    CHECKPOINT_DISABLE: '1',
  },
});
if (result.status !== 0) process.exit(result.status ?? 1);

/*
 * The generated client imports its query compiler as an ES module that exports the WebAssembly binary as one
 * base64 string (2.2 MiB). An ES module is never unloaded, so every process kept that string twice for its
 * whole life: the module's source and the exported value, 4.4 MiB of a worker's 43 MiB idle heap, and twice
 * that at a worker's peak, whose old generation grows to twice what is live (BENCHMARKS.md). Reading the same
 * file as text and decoding it leaves nothing behind once the WebAssembly module is compiled.
 *
 * A Prisma upgrade that changes the generated line fails the build here rather than silently keeping the copy.
 */
const CLASS_FILE = new URL('../src/generated/prisma/internal/class.ts', import.meta.url);
const IMPORTED = /const \{ wasm \} = await import\("(@prisma\/client\/runtime\/query_compiler_\w+\.\w+)\.wasm-base64\.mjs"\)/;
const generated = readFileSync(CLASS_FILE, 'utf8');
const match = IMPORTED.exec(generated);
if (!match) {
  console.error(`scripts/prisma-generate.mjs: the generated ${CLASS_FILE.pathname} no longer imports its query compiler as expected; update this script`);
  process.exit(1);
}
const READ_AS_TEXT = [
  `const { createRequire } = await import('node:module')`,
  `    const { readFile } = await import('node:fs/promises')`,
  `    // The CommonJS twin of the module holds the same string: \`const wasm = "<base64>";\`.`,
  `    const source = await readFile(createRequire(import.meta.url).resolve('${match[1]}.wasm-base64.js'), 'latin1')`,
  `    const wasm = source.slice(source.indexOf('"') + 1, source.lastIndexOf('"'))`,
  `    if (!/^[A-Za-z0-9+/]+=*$/.test(wasm)) throw new Error('the query compiler at ${match[1]}.wasm-base64.js is not a base64 string')`,
].join('\n');
writeFileSync(CLASS_FILE, generated.replace(IMPORTED, READ_AS_TEXT));
