// `npm run -s cli -- <command>`: the operator CLI from dist/, built first when the last complete build
// (dist/.built, written by `npm run build` once tsc has succeeded) is missing or older than the sources (a
// `git pull` since), so that an operator never runs code the checkout no longer has, nor a build that failed
// halfway. The build's output goes to stderr; a build that fails stops here, with the CLI's one-line JSON error.
// Two CLI calls that find the build stale at once take turns (a lock folder): the second finds it fresh and
// runs, instead of loading dist/ while the first one's build has emptied it.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

/** Whether the process that wrote the lock is still running (a launcher stopped by Ctrl-C leaves its lock). */
function holderAlive(lock) {
  try {
    process.kill(Number(readFileSync(path.join(lock, 'pid'), 'utf8')), 0);
    return true;
  } catch (error) {
    // EPERM: running, as another user. No pid yet: the holder is between creating the lock and writing it.
    return error.code === 'EPERM' || (error.code === 'ENOENT' && Date.now() - modifiedAt(lock) < 5_000);
  }
}

/** Runs `work` holding the build lock; a lock whose holder is gone is taken over. */
function withBuildLock(work) {
  const lock = path.join(root, 'node_modules', '.cli-build.lock');
  let told = false;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(path.join(lock, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
      if (!holderAlive(lock)) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (!told) process.stderr.write('waiting for another CLI call to finish building\n');
      told = true;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
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
  // Built meanwhile by the call that held the lock, or built now. (fail() exits: only once the lock is given up.)
  const built = withBuildLock(() => !isStale() || spawnSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: ['ignore', 2, 2] }).status === 0);
  if (!built) fail('BUILD_FAILED', 'the CLI could not be built: see the output above');
}
try {
  await import(pathToFileURL(entry).href);
} catch (error) {
  fail('BUILD_FAILED', `the CLI could not be loaded from dist/ (${error.message.split('\n')[0]}); run npm run build`);
}
