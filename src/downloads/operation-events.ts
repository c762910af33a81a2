import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { AppConfig } from '../platform/config/app-config.js';
import { createBlockingRedis, FAST_REDIS } from '../platform/redis/redis.connections.js';

const SUBSCRIBE_WAIT_MS = 1_000;

/**
 * Tells waiting API requests (`Prefer: wait=N`) that an operation has settled, through Redis pub/sub: one
 * channel, one subscriber connection per API process, opened on first use.
 */
@Injectable()
export class OperationEvents implements OnModuleDestroy {
  private readonly logger = new Logger(OperationEvents.name);
  private subscriber: Redis | undefined;
  private subscribed: Promise<void> | undefined;
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(
    @Inject(FAST_REDIS) private readonly redis: Redis,
    private readonly config: AppConfig,
  ) {}

  private get channel(): string {
    return `${this.config.QUEUE_PREFIX}:operation-settled`;
  }

  async publishSettled(operationId: string): Promise<void> {
    try {
      await this.redis.publish(this.channel, operationId);
    } catch (error) {
      // Waiters fall back to their deadline and re-read Postgres; the operation itself is already recorded.
      this.logger.warn(`could not announce operation ${operationId}: ${(error as Error).message}`);
    }
  }

  /**
   * Starts listening for one operation. Call before re-reading its state, then await `settled`, so that an
   * event between the read and the wait is not missed. Resolves true when the event came, false on timeout.
   */
  async listen(operationId: string, timeoutMs: number): Promise<{ settled: Promise<boolean>; cancel: () => void }> {
    await this.ensureSubscribed();
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
   * Subscribes once per process. While Redis is away the subscription completes when it returns (ioredis
   * re-subscribes by itself); meanwhile waiters simply run to their deadline.
   */
  private async ensureSubscribed(): Promise<void> {
    if (!this.subscriber) {
      const subscriber = createBlockingRedis(this.config.REDIS_URL, 'operation-events');
      this.subscriber = subscriber;
      subscriber.on('error', (error) => this.logger.warn(`event subscriber: ${error.message}`));
      subscriber.on('message', (_channel: string, operationId: string) => {
        for (const wake of [...(this.waiters.get(operationId) ?? [])]) wake();
      });
      this.subscribed = subscriber.subscribe(this.channel).then(
        () => undefined,
        (error: Error) => this.logger.warn(`could not subscribe to operation events: ${error.message}`),
      );
    }
    await Promise.race([this.subscribed, new Promise((resolve) => setTimeout(resolve, SUBSCRIBE_WAIT_MS).unref())]);
  }

  async onModuleDestroy(): Promise<void> {
    for (const waiters of this.waiters.values()) for (const wake of [...waiters]) wake();
    this.subscriber?.disconnect();
  }
}
