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
@Injectable()
export class QueueWorkers {
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
      // A job whose worker died twice is failed instead of being handed round for ever.
      maxStalledCount: 2,
      ...extra,
    });
  }
}
