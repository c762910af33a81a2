import { Injectable } from '@nestjs/common';
import http from 'node:http';
import https from 'node:https';
import { RequestFilteringHttpAgent, RequestFilteringHttpsAgent } from 'request-filtering-agent';
import { Webhook } from 'standardwebhooks';
import { AppConfig } from '../platform/config/app-config.js';

/** A receiver has this long to answer, from the connection to the last byte we read. */
const TIMEOUT_MS = 10_000;
/** Answers are read this far and ignored: a receiver cannot make us hold more. */
const MAX_ANSWER_BYTES = 64 * 1024;

export interface SendOutcome {
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  delivered: boolean;
}

/**
 * POSTs one signed event, per Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`),
 * refusing what a server-side request forgery would need: only https (unless WEBHOOK_ALLOW_PRIVATE), the
 * resolved address checked on each connection (no private, loopback, link-local or metadata addresses, IPv4
 * and IPv6: request-filtering-agent, so a name that later resolves elsewhere is caught too), no redirects
 * followed, a 10 s deadline, and at most 64 KiB of the answer read.
 */
@Injectable()
export class WebhookSender {
  private readonly agents: { 'https:': https.Agent; 'http:': http.Agent };

  constructor(private readonly config: AppConfig) {
    const allowPrivateIPAddress = config.WEBHOOK_ALLOW_PRIVATE;
    this.agents = {
      'https:': new RequestFilteringHttpsAgent({ allowPrivateIPAddress, keepAlive: true }),
      'http:': new RequestFilteringHttpAgent({ allowPrivateIPAddress, keepAlive: true }),
    };
  }

  async send(url: string, secret: string, eventId: string, body: string): Promise<SendOutcome> {
    const started = Date.now();
    const outcome = (statusCode: number | null, error: string | null): SendOutcome => ({
      statusCode,
      error,
      durationMs: Date.now() - started,
      delivered: statusCode !== null && statusCode >= 200 && statusCode < 300,
    });
    const target = new URL(url);
    if (target.protocol !== 'https:' && !(this.config.WEBHOOK_ALLOW_PRIVATE && target.protocol === 'http:')) {
      return outcome(null, 'refused: only https:// URLs are called');
    }
    const timestamp = new Date();
    const signature = new Webhook(secret).sign(eventId, timestamp, body);
    try {
      const statusCode = await this.post(target, body, {
        'content-type': 'application/json',
        'user-agent': 'job-download-service-webhooks/1',
        'webhook-id': eventId,
        'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
        'webhook-signature': signature,
      });
      return outcome(statusCode, statusCode >= 300 && statusCode < 400 ? 'redirects are not followed' : null);
    } catch (error) {
      return outcome(null, (error as Error).message.slice(0, 500));
    }
  }

  private post(target: URL, body: string, headers: Record<string, string>): Promise<number> {
    const client = target.protocol === 'https:' ? https : http;
    return new Promise<number>((resolve, reject) => {
      const request = client.request(target, {
        method: 'POST',
        agent: this.agents[target.protocol as 'https:' | 'http:'],
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      request.once('error', (error) => reject(error.name === 'AbortError' ? new Error(`no answer within ${TIMEOUT_MS / 1000} s`) : error));
      request.once('response', (response) => {
        let read = 0;
        response.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_ANSWER_BYTES) response.destroy();
        });
        const done = () => resolve(response.statusCode ?? 0);
        response.once('end', done);
        response.once('close', done);
        response.once('error', done);
      });
      request.end(body);
    });
  }

  close(): void {
    this.agents['https:'].destroy();
    this.agents['http:'].destroy();
  }
}
