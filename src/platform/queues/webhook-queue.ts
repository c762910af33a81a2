import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { Queue } from 'bullmq';
import { AppConfig } from '../config/app-config.js';
import { DependencyUnavailableError } from '../errors.js';
import { RedisConnections } from '../redis/redis.module.js';
import { WEBHOOK_JOB, WEBHOOK_QUEUE, type WebhookJobData } from './queue-names.js';

const ADD_TIMEOUT_MS = 3_000;

/**
 * The process's one Queue object for webhook deliveries: a queue of their own, so that a slow or failing
 * receiver never holds up a build. Retries follow WEBHOOK_RETRY_DELAYS_SECONDS (the workers' backoff).
 */
@Injectable()
export class WebhookQueue implements OnModuleDestroy {
  private queue: Queue<WebhookJobData> | undefined;

  constructor(
    private readonly config: AppConfig,
    private readonly connections: RedisConnections,
  ) {}

  /**
   * Queues one delivery; the same event and endpoint twice is one job (a job still in Redis is left as it is).
   * `attemptsBefore`: attempts already recorded, when Redis lost the job that made them; the rest are left.
   */
  async add(eventId: string, endpointId: string, attemptsBefore = 0): Promise<void> {
    const adding = this.open().add(
      WEBHOOK_JOB,
      { eventId, endpointId, ...(attemptsBefore > 0 ? { attemptsBefore } : {}) },
      {
        jobId: `${eventId}.${endpointId}`,
        attempts: Math.max(1, this.config.webhookRetryDelaysMs.length + 1 - attemptsBefore),
        backoff: { type: 'custom' },
        removeOnComplete: { age: 24 * 3600, count: 10_000 },
        removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
      },
    );
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([adding, new Promise((_, reject) => (timer = setTimeout(() => reject(new DependencyUnavailableError('redis')), ADD_TIMEOUT_MS)))]);
    } finally {
      clearTimeout(timer);
    }
  }

  async onModuleDestroy(): Promise<void> {
    await this.queue?.close();
  }

  /** Opened on first use: only processes that dispatch events hold this connection. */
  private open(): Queue<WebhookJobData> {
    if (!this.queue) {
      this.queue = new Queue<WebhookJobData>(WEBHOOK_QUEUE, { connection: this.connections.fast('webhook-queue'), prefix: this.config.QUEUE_PREFIX });
      this.queue.on('error', () => undefined);
    }
    return this.queue;
  }
}
