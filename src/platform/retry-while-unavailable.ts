import { setTimeout as sleep } from 'node:timers/promises';
import { isDependencyUnavailable } from './errors.js';

/** Postgres or Redis blinking: how long to wait before each further try of a write that must not be lost. */
export const BLINK_RETRIES_MS = [500, 2_000, 5_000];

/**
 * A finished package's ready record: tried for about ten minutes, through a managed Postgres's failover (30 to
 * 120 s), rather than a few seconds. Giving up would throw away a complete package, and the next attempt would
 * build all of it again.
 */
export const READY_WRITE_RETRIES_MS = [500, 2_000, ...new Array<number>(120).fill(5_000)];

/**
 * Runs `write`, and runs it again after each delay while it fails because a dependency cannot be reached
 * (any other failure, or the last one, is thrown). For writes that record something that already happened:
 * a package finished, a webhook sent. `onRetry` hears each failure that is tried again; an aborted `signal`
 * (a shutdown, a lost lock) ends the waiting with the last failure.
 */
export async function retryWhileUnavailable<T>(
  write: () => Promise<T>,
  onRetry?: (error: Error) => void,
  delaysMs: readonly number[] = BLINK_RETRIES_MS,
  signal?: AbortSignal,
): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await write();
    } catch (error) {
      if (!isDependencyUnavailable(error) || retry >= delaysMs.length || signal?.aborted) throw error;
      onRetry?.(error as Error);
      await sleep(delaysMs[retry], undefined, { signal }).catch(() => undefined);
      if (signal?.aborted) throw error;
    }
  }
}
