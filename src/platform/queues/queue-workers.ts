import { Injectable } from '@nestjs/common';
import { Worker, type Processor, type WorkerOptions } from 'bullmq';
import { AppConfig } from '../config/app-config.js';
import { RedisConnections } from '../redis/redis.module.js';

/**
 * Builds the service's BullMQ workers from AppConfig, in one place: their blocking connection (which waits
 * through Redis outages), key prefix, concurrency and lock timings. A build takes minutes: its lock is renewed
 * while it runs, and a worker that dies loses it after WORKER_LOCK_SECONDS, when another worker takes the job
 * over. Workers are created stopped; their owner runs them once the application has started.
 */
/** Past the shutdown grace period, how long a closing worker may still wait on Redis before its connections are cut. */
const CLOSE_PATIENCE_MS = 5_000;

@Injectable()
export class QueueWorkers {
  /** When closing workers still waiting on Redis have their connections cut. */
  private cutAt: number | undefined;
  /** What must begin as soon as the process starts shutting down, whichever worker closes first. */
  private readonly drains: Array<() => Promise<void>> = [];

  constructor(
    private readonly config: AppConfig,
    private readonly connections: RedisConnections,
  ) {}

  create<Data, Result>(queueName: string, processor: Processor<Data, Result>, concurrency: number, extra: Partial<WorkerOptions> = {}): Worker<Data, Result> {
    const lockMs = this.config.WORKER_LOCK_SECONDS * 1000;
    return new Worker<Data, Result>(queueName, processor, {
      connection: this.connections.blocking(`${queueName}-worker`),
      prefix: this.config.QUEUE_PREFIX,
      autorun: false,
      concurrency,
      lockDuration: lockMs,
      lockRenewTime: lockMs / 2,
      stalledInterval: lockMs,
      // A job whose workers died under it a third time is failed instead of being handed round for ever
      // (BullMQ fails it once its stall count passes this).
      maxStalledCount: 2,
      ...extra,
    });
  }

  /**
   * Registers a drain (idempotent: it is called again from its owner's own destroy hook) to start with the
   * process's first close, whichever worker that is.
   */
  drainOnShutdown(drain: () => Promise<void>): void {
    this.drains.push(drain);
  }

  /**
   * The process is stopping: every registered drain starts now, and the grace period counts from now. Called at
   * the signal, before the API has finished answering its requests, and again by each closing worker. Answers
   * when closing workers still waiting on Redis have their connections cut.
   */
  startDraining(): number {
    // One deadline for the process: its workers close one after another.
    if (this.cutAt !== undefined) return this.cutAt;
    this.cutAt = Date.now() + this.config.SHUTDOWN_GRACE_SECONDS * 1000 + CLOSE_PATIENCE_MS;
    // Nest destroys modules one after another: a drain that waited its turn behind a long maintenance run
    // would keep taking builds after SIGTERM and find its grace spent. Every drain starts now.
    // (A microtask: the closing owner may be one of them, and must have noted that it is draining first.)
    for (const drain of this.drains) queueMicrotask(() => void drain().catch(() => undefined));
    return this.cutAt;
  }

  /**
   * Closes a worker: it takes no more jobs and waits for those it runs. BullMQ's close also waits for its
   * commands in flight, which wait for ever while Redis is away; so a worker still closing a few seconds past
   * SHUTDOWN_GRACE_SECONDS (counted from the signal, or from the first close) has its connections cut. Its commands
   * fail, the close ends, and jobs it could not hand back are taken over elsewhere once their locks lapse.
   */
  async close(worker: Worker): Promise<void> {
    const cutAt = this.startDraining();
    const closing = worker.close();
    const cut = setTimeout(() => void worker.disconnect().catch(() => undefined), Math.max(0, cutAt - Date.now()));
    try {
      await closing;
    } finally {
      clearTimeout(cut);
    }
  }
}
