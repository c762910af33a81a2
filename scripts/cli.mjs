// `npm run -s cli -- <command>`: the operator CLI from dist/, built first when the last complete build
// (dist/.built, written by `npm run build` once tsc has succeeded) is missing or older than the sources (a
// `git pull` since), so that an operator never runs code the checkout no longer has, nor a build that failed
// halfway. The build's output goes to stderr; a build that fails stops here, with the CLI's one-line JSON error.
// Two CLI calls that find the build stale at once take turns (a lock folder): the second finds it fresh and
// runs, instead of loading dist/ while the first one's build has emptied it.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const entry = path.join(root, 'dist', 'cli.js');
const builtAt = path.join(root, 'dist', '.built');

function modifiedAt(file) {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

/** The newest modification time under a folder (the generated Prisma client is the build's own output). */
function newestUnder(folder) {
  let newest = 0;
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    const full = path.join(folder, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'generated') newest = Math.max(newest, newestUnder(full));
    } else {
      newest = Math.max(newest, modifiedAt(full));
    }
  }
  return newest;
}

function fail(code, message) {
  process.stderr.write(`${JSON.stringify({ error: { code, message } })}\n`);
  process.exit(1);
}

/** Runs `work` holding the build lock; a lock left by a build that died is taken over after ten minutes. */
function withBuildLock(work) {
  const lock = path.join(root, 'node_modules', '.cli-build.lock');
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
      if (Date.now() - modifiedAt(lock) > 600_000) rmSync(lock, { recursive: true, force: true });
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
  try {
    return work();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

const inputs = ['prisma/schema.prisma', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts/prisma-generate.mjs'];
const isStale = () =>
  modifiedAt(builtAt) < Math.max(newestUnder(path.join(root, 'src')), ...inputs.map((file) => modifiedAt(path.join(root, file))));
if (isStale()) {
  withBuildLock(() => {
    // Built meanwhile by the call that held the lock.
    if (!isStale()) return;
    const build = spawnSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: ['ignore', 2, 2] });
    if (build.status !== 0) fail('BUILD_FAILED', 'the CLI could not be built: see the output above');
  });
}
try {
  await import(pathToFileURL(entry).href);
} catch (error) {
  fail('BUILD_FAILED', `the CLI could not be loaded from dist/ (${error.message.split('\n')[0]}); run npm run build`);
}
