import { isDependencyUnavailable } from './errors.js';

/** Postgres or Redis blinking: how long to wait before each further try of a write that must not be lost. */
export const BLINK_RETRIES_MS = [500, 2_000, 5_000];

/**
 * Runs `write`, and runs it again after each delay while it fails because a dependency cannot be reached
 * (any other failure, or the last one, is thrown). For writes that record something that already happened:
 * a package finished, a webhook sent. `onRetry` hears each failure that is tried again.
 */
export async function retryWhileUnavailable<T>(write: () => Promise<T>, onRetry?: (error: Error) => void, delaysMs: readonly number[] = BLINK_RETRIES_MS): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await write();
    } catch (error) {
      if (!isDependencyUnavailable(error) || retry >= delaysMs.length) throw error;
      onRetry?.(error as Error);
      await new Promise((resolve) => setTimeout(resolve, delaysMs[retry]));
    }
  }
}
