/**
 * What must be undone even when the bench is interrupted (Ctrl-C, SIGTERM): the s3rver folder, the API's
 * database and Redis keys. Normal runs undo each in a `finally`; this registry covers the signals, which skip those.
 */
const steps = new Set<() => Promise<void>>();

/** Registers an undo step; returns the function that unregisters it (call it once the step has run normally). */
export function onInterrupt(step: () => Promise<void>): () => void {
  steps.add(step);
  return () => steps.delete(step);
}

async function interrupted(signal: NodeJS.Signals): Promise<void> {
  process.stderr.write(`[bench] ${signal}: cleaning up\n`);
  // Newest first: the API's database goes before the S3 server it was seeded against.
  for (const step of [...steps].reverse()) await step().catch(() => undefined);
  process.exit(130);
}

process.once('SIGINT', interrupted);
process.once('SIGTERM', interrupted);
