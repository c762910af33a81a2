import { Injectable } from '@nestjs/common';
import type { WebhookDelivery, WebhookEndpoint, WebhookEvent } from '../generated/prisma/client.js';
import { PrismaService } from '../platform/prisma/prisma.service.js';

export type { WebhookDelivery, WebhookEndpoint, WebhookEvent };

export interface DeliveryAttempt {
  eventId: string;
  eventType: string;
  organisationId: string;
  endpointId: string;
  url: string;
  attempt: number;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  delivered: boolean;
  nextAttemptAt: Date | null;
}

export interface OverdueDelivery {
  eventId: string;
  createdAt: Date;
  endpointId: string;
  attempts: number;
}

export type OverdueCursor = Pick<OverdueDelivery, 'createdAt' | 'eventId' | 'endpointId'>;

/** Webhook endpoints, the outbox of events to deliver, and every delivery attempt. */
@Injectable()
export class WebhookRepository {
  constructor(private readonly prisma: PrismaService) {}

  createEndpoint(organisationId: string, url: string, secretCiphertext: string): Promise<WebhookEndpoint> {
    return this.prisma.webhookEndpoint.create({ data: { organisationId, url, secretCiphertext } });
  }

  listEndpoints(organisationId: string): Promise<WebhookEndpoint[]> {
    return this.prisma.webhookEndpoint.findMany({ where: { organisationId }, orderBy: { createdAt: 'asc' } });
  }

  findEndpoint(id: string): Promise<WebhookEndpoint | null> {
    return this.prisma.webhookEndpoint.findUnique({ where: { id } });
  }

  /** Deletes the endpoint (of the organisation, when given); false when there was none. */
  async deleteEndpoint(id: string, organisationId?: string): Promise<boolean> {
    const { count } = await this.prisma.webhookEndpoint.deleteMany({ where: { id, ...(organisationId ? { organisationId } : {}) } });
    return count === 1;
  }

  findEvent(id: string): Promise<WebhookEvent | null> {
    return this.prisma.webhookEvent.findUnique({ where: { id } });
  }

  /** Events not yet queued: those of the operation when given, else those older than `before`. */
  findUndispatched(filter: { operationId: string } | { before: Date }, limit = 500): Promise<WebhookEvent[]> {
    const where = 'operationId' in filter ? { operationId: filter.operationId } : { createdAt: { lt: filter.before } };
    return this.prisma.webhookEvent.findMany({ where: { dispatchedAt: null, ...where }, orderBy: { createdAt: 'asc' }, take: limit });
  }

  /**
   * Deliveries that should have run by `dueBefore` and have nothing recorded since: queued at dispatch with no
   * attempt yet, or whose last attempt failed with a retry due. Either their job waits in a busy queue, or
   * Redis lost it (restarted empty, failed over). Events since `since` only, and only the endpoints that
   * existed when the event was dispatched; in the order of the events, after `after` (a page's last row).
   * Answers each with the attempts already made.
   */
  async findOverdueDeliveries(dueBefore: Date, since: Date, after: OverdueCursor | undefined, limit: number): Promise<OverdueDelivery[]> {
    const none = '00000000-0000-0000-0000-000000000000';
    const [afterAt, afterEvent, afterEndpoint] = after ? [after.createdAt, after.eventId, after.endpointId] : [since, none, none];
    return this.prisma.$queryRaw`
      SELECT e.id AS "eventId", e.created_at AS "createdAt", p.id AS "endpointId", COALESCE(last.attempt, 0)::int AS attempts
        FROM webhook_events e
        JOIN webhook_endpoints p ON p.organisation_id = e.organisation_id AND p.created_at <= e.dispatched_at
        LEFT JOIN LATERAL (
          SELECT d.attempt, d.delivered, d.next_attempt_at FROM webhook_deliveries d
           WHERE d.event_id = e.id AND d.endpoint_id = p.id ORDER BY d.attempt DESC LIMIT 1) last ON true
       WHERE e.created_at > ${since} AND (e.created_at, e.id, p.id) > (${afterAt}, ${afterEvent}::uuid, ${afterEndpoint}::uuid) AND e.dispatched_at < ${dueBefore}
         AND (last.attempt IS NULL OR (NOT last.delivered AND last.next_attempt_at < ${dueBefore}))
       ORDER BY e.created_at, e.id, p.id LIMIT ${limit}`;
  }

  async markDispatched(id: string): Promise<void> {
    await this.prisma.webhookEvent.updateMany({ where: { id, dispatchedAt: null }, data: { dispatchedAt: new Date() } });
  }

  /**
   * Webhook history older than `before`: delivery attempts and events (each holds a copy of its operation),
   * unless a retry of theirs was due after `before` (an attempt's next_attempt_at stays set once the retry has
   * run; retries come hours apart, so none due before `before` can still be waiting). Up to `limit` rows of
   * each; answers how many of each went.
   */
  async pruneHistory(before: Date, limit: number): Promise<{ deliveries: number; events: number }> {
    const deliveries = await this.prisma.$executeRaw`
      DELETE FROM webhook_deliveries WHERE id IN (
        SELECT id FROM webhook_deliveries
         WHERE attempted_at < ${before} AND (next_attempt_at IS NULL OR next_attempt_at < ${before})
         ORDER BY attempted_at LIMIT ${limit})`;
    const events = await this.prisma.$executeRaw`
      DELETE FROM webhook_events WHERE id IN (
        SELECT id FROM webhook_events e WHERE created_at < ${before}
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.next_attempt_at >= ${before})
         ORDER BY created_at LIMIT ${limit})`;
    return { deliveries, events };
  }

  async recordAttempt(attempt: DeliveryAttempt): Promise<void> {
    await this.prisma.webhookDelivery.create({ data: attempt });
  }

  listDeliveries(organisationId: string, limit: number): Promise<WebhookDelivery[]> {
    return this.prisma.webhookDelivery.findMany({ where: { organisationId }, orderBy: { attemptedAt: 'desc' }, take: limit });
  }
}
