// `npm run -s cli -- <command>`: the operator CLI from dist/, built first when the last complete build
// (dist/.built, written by `npm run build` once tsc has succeeded) is missing or older than the sources (a
// `git pull` since), so that an operator never runs code the checkout no longer has, nor a build that failed
// halfway. The build's output is kept, not printed: stderr carries only the CLI's one-line JSON error, so a
// build that fails stops here with that line, the tail of its output in the error's details.
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

function fail(code, message, details) {
  process.stderr.write(`${JSON.stringify({ error: { code, message, ...(details?.length ? { details } : {}) } })}\n`);
  process.exit(1);
}

/** Lines of output kept in a failed build's error: tsc names each error on a line of its own. */
const BUILD_OUTPUT_LINES = 10;
const BUILD_LINE_CHARACTERS = 300;

/**
 * Runs `npm run build` with its output captured, for the error it may become. Answers null when it succeeded,
 * else its first error line (the cause) and the last lines of its output, without colour codes.
 */
function build() {
  const run = spawnSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (run.status === 0) return null;
  // Prisma's generate (first) writes to stderr, tsc's errors (last) to stdout: in that order, the tail is the end.
  const output = `${run.stderr ?? ''}\n${run.stdout ?? ''}\n${run.error ? run.error.message : ''}`;
  const lines = output
    .replace(/\x1b\[[0-9;]*[A-Za-z]/g, '')
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => (line.length > BUILD_LINE_CHARACTERS ? `${line.slice(0, BUILD_LINE_CHARACTERS - 1)}…` : line));
  // The first error line of the whole output names the cause (tsc: "src/x.ts(3,1): error TS1005: ..."), even
  // when more errors follow than the tail keeps.
  const cause = lines.find((line) => /\berror\b/i.test(line)) ?? lines.at(-1) ?? 'no output';
  return { cause, tail: lines.slice(-BUILD_OUTPUT_LINES) };
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

/** Runs `work` holding the build lock, waiting for another call's; a lock whose holder is gone is taken over. */
function withBuildLock(work) {
  const lock = path.join(root, 'node_modules', '.cli-build.lock');
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
      // Quietly: stderr is for the one-line JSON error alone.
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
  const failure = withBuildLock(() => (isStale() ? build() : null));
  if (failure) fail('BUILD_FAILED', `the CLI could not be built (npm run build failed): ${failure.cause}`, failure.tail.map((message) => ({ message })));
}
try {
  await import(pathToFileURL(entry).href);
} catch (error) {
  fail('BUILD_FAILED', `the CLI could not be loaded from dist/ (${error.message.split('\n')[0]}); run npm run build`);
}
