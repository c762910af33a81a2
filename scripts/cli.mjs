// `npm run -s cli -- <command>`: the operator CLI from dist/, built first when the last complete build
// (dist/.built, written by `npm run build` once tsc has succeeded) is missing or older than the sources (a
// `git pull` since), so that an operator never runs code the checkout no longer has, nor a build that failed
// halfway. The build's output goes to stderr; a build that fails stops here, with the CLI's one-line JSON error.
// Two CLI calls that both build at once can still trip over each other (the build empties dist/ first).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
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

const inputs = ['prisma/schema.prisma', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts/prisma-generate.mjs'];
const sourcesAt = Math.max(newestUnder(path.join(root, 'src')), ...inputs.map((file) => modifiedAt(path.join(root, file))));
if (modifiedAt(builtAt) < sourcesAt) {
  const build = spawnSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: ['ignore', 2, 2] });
  if (build.status !== 0) {
    process.stderr.write(`${JSON.stringify({ error: { code: 'BUILD_FAILED', message: 'the CLI could not be built: see the output above' } })}\n`);
    process.exit(1);
  }
}
await import(pathToFileURL(entry).href);
