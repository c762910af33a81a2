import { isDependencyUnavailable } from '../platform/errors.js';
import { PackagingError } from './packaging-error.js';

/** Why a running build was stopped from outside: the reason its BullMQ abort signal carries. */
export const SHUTDOWN_REASON = 'shutdown';
export const LOCK_LOST_REASON = 'lock-lost';
export const CANCELLED_REASON = 'cancelled';

/**
 * What becomes of a packaging attempt that did not succeed:
 * - `hand-back`: the worker is shutting down; the job goes back to the queue at once, no attempt spent;
 * - `abandon`: the worker lost the job's lock, so another worker may own the job now: record nothing, clean
 *   up this attempt's object, and hand the job back as for a shutdown, which Redis refuses if another worker
 *   holds it (and allows, no attempt spent, if the lock was only judged lost);
 * - `cancelled`: the caller cancelled the operation (already recorded): the job ends, its object goes;
 * - `postpone`: Postgres or Redis could not be reached to do or record the attempt; the job comes back a
 *   little later, no attempt spent (an outage is not the operation's fault);
 * - `retry`: a transient failure of the build with attempts left; the operation stays pending and BullMQ
 *   retries it with backoff;
 * - `final`: the last attempt, or a cause another attempt cannot fix; the operation fails.
 */
export type AttemptVerdict = 'hand-back' | 'abandon' | 'cancelled' | 'postpone' | 'retry' | 'final';

export interface FailedAttempt {
  error: unknown;
  /** Attempts BullMQ had made before this one. */
  attemptsMade: number;
  maxAttempts: number;
  /** The reason the build's abort signal carries, if it was aborted. */
  abortReason?: unknown;
}

export function judgeFailedAttempt({ error, attemptsMade, maxAttempts, abortReason }: FailedAttempt): AttemptVerdict {
  if (abortReason === SHUTDOWN_REASON) return 'hand-back';
  if (abortReason === LOCK_LOST_REASON) return 'abandon';
  if (abortReason === CANCELLED_REASON) return 'cancelled';
  // The build wraps whatever S3 does in a PackagingError; anything else unreachable is Postgres or Redis.
  if (!(error instanceof PackagingError)) return isDependencyUnavailable(error) ? 'postpone' : attemptsMade + 1 >= maxAttempts ? 'final' : 'retry';
  if (!error.retriable) return 'final';
  return attemptsMade + 1 >= maxAttempts ? 'final' : 'retry';
}
