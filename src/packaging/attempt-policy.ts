import type { PackagingError } from './packaging-error.js';

/** Why a running build was stopped from outside: the reason its BullMQ abort signal carries. */
export const SHUTDOWN_REASON = 'shutdown';

/**
 * What becomes of a packaging attempt that did not succeed:
 * - `hand-back`: the worker is shutting down; the job goes back to the queue without spending an attempt;
 * - `retry`: a transient failure with attempts left; the operation stays pending and BullMQ retries later;
 * - `final`: the last attempt, or a cause another attempt cannot fix; the operation fails.
 */
export type AttemptVerdict = 'hand-back' | 'retry' | 'final';

export interface FailedAttempt {
  failure: PackagingError;
  /** Attempts BullMQ had made before this one. */
  attemptsMade: number;
  maxAttempts: number;
  /** The reason the build's abort signal carries, if it was aborted. */
  abortReason?: unknown;
}

export function judgeFailedAttempt({ failure, attemptsMade, maxAttempts, abortReason }: FailedAttempt): AttemptVerdict {
  if (abortReason === SHUTDOWN_REASON) return 'hand-back';
  if (!failure.retriable) return 'final';
  return attemptsMade + 1 >= maxAttempts ? 'final' : 'retry';
}
