import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { RedisEvents } from '../platform/redis/redis-events.js';

/** An operation left `pending`: requests held on it (`Prefer: wait`) answer. */
export const OPERATION_SETTLED = 'operation-settled';
/** An operation will not be built any more (cancelled, superseded): whichever worker runs its build stops it. */
export const OPERATION_CANCELLED = 'operation-cancelled';
const SETTLED = OPERATION_SETTLED;
const CANCELLED = OPERATION_CANCELLED;

/**
 * Announced (Announcer) when cached lookups of ready packages may be stale: a job registered anew, an
 * operation cancelled. Every API process drops them.
 */
export const READY_LOOKUPS_STALE = 'ready-lookups-stale';

/**
 * Operations' news over Redis pub/sub: workers announce that an operation settled and API processes wake the
 * requests they hold (`Prefer: wait=N`); the API announces a cancel and whichever worker runs that build
 * stops it.
 */
@Injectable()
export class OperationEvents implements OnModuleDestroy {
  private readonly logger = new Logger(OperationEvents.name);
  private subscribed: Promise<void> | undefined;
  private readonly waiters = new Map<string, Set<() => void>>();
  private stopping = false;

  constructor(private readonly events: RedisEvents) {}

  async publishSettled(operationId: string): Promise<void> {
    try {
      await this.events.publish(SETTLED, operationId);
    } catch (error) {
      // Waiters fall back to their deadline and re-read Postgres; the operation itself is already recorded.
      this.logger.warn(`could not announce operation ${operationId}: ${(error as Error).message}`);
    }
  }

  /** Best effort, like publishSettled: a build that misses it is stopped when it next records progress. */
  async publishCancelled(operationId: string): Promise<void> {
    try {
      await this.events.publish(CANCELLED, operationId);
    } catch (error) {
      this.logger.warn(`could not announce the cancel of ${operationId}: ${(error as Error).message}`);
    }
  }

  /** Calls `handler` with the id of every operation cancelled anywhere. */
  async onCancelled(handler: (operationId: string) => void): Promise<void> {
    await this.events.subscribe(CANCELLED, handler);
  }

  /**
   * Starts listening for one operation. Call before re-reading its state, then await `settled`, so that an
   * event between the read and the wait is not missed. Resolves true when the event came, false on timeout
   * or cancel, and at once (false) once the process is stopping.
   */
  async listen(operationId: string, timeoutMs: number): Promise<{ settled: Promise<boolean>; cancel: () => void }> {
    if (this.stopping) return { settled: Promise.resolve(false), cancel: () => undefined };
    this.subscribed ??= this.events.subscribe(SETTLED, (id) => {
      for (const wake of [...(this.waiters.get(id) ?? [])]) wake();
    });
    await this.subscribed;
    // The first wait of the process may have waited here for its subscription while the process began to stop.
    if (this.stopping) return { settled: Promise.resolve(false), cancel: () => undefined };
    let resolveSettled: (value: boolean) => void = () => undefined;
    const settled = new Promise<boolean>((resolve) => (resolveSettled = resolve));
    const waiters = this.waiters.get(operationId) ?? new Set<() => void>();
    this.waiters.set(operationId, waiters);
    const finish = (value: boolean) => {
      clearTimeout(timer);
      waiters.delete(onEvent);
      if (waiters.size === 0) this.waiters.delete(operationId);
      resolveSettled(value);
    };
    const onEvent = () => finish(true);
    const timer = setTimeout(() => finish(false), timeoutMs);
    waiters.add(onEvent);
    return { settled, cancel: () => finish(false) };
  }

  /**
   * The process is stopping: every held request is woken now (it re-reads the operation) and no new one waits,
   * so that each answers the operation as it stands (pending: the caller polls, or waits on another instance) while Postgres is still
   * open, instead of failing when it closes.
   */
  stopWaiting(): void {
    this.stopping = true;
    for (const waiters of this.waiters.values()) for (const wake of [...waiters]) wake();
  }

  onModuleDestroy(): void {
    this.stopWaiting();
  }
}
