import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LoggerModule } from 'nestjs-pino';
import { AppConfig, type Role } from '../config/app-config.js';

/** A request id from the gateway is kept when it looks like one; otherwise a new one is made. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const QUIET_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

export function requestIdOf(request: IncomingMessage, response: ServerResponse): string {
  const given = request.headers['x-request-id'];
  const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
  response.setHeader('X-Request-Id', id);
  return id;
}

/** `[Context] PUT /v0/... 200 request completed` in a terminal. */
const PRETTY_MESSAGE = '{if context}[{context}] {end}{if req.method}{req.method} {req.url} {res.statusCode} {end}{msg}';

export type LogFormat = 'json' | 'pretty';

/**
 * JSON lines for the production roles and whenever output goes to a file or a collector; human-readable lines
 * only for the local all-in-one writing to a terminal, where the demo key and curl line must not be buried in
 * JSON. LOG_FORMAT forces either.
 */
export function logFormatFor(role: Role, setting: 'auto' | LogFormat, stdoutIsTerminal: boolean): LogFormat {
  if (setting !== 'auto') return setting;
  return role === 'all' && stdoutIsTerminal ? 'pretty' : 'json';
}

/**
 * Logs through pino. Every line of a request carries its request id (echoed in X-Request-Id); the
 * Authorization header and cookies are redacted; health probes and scrapes are not logged.
 */
export class LoggingModule {
  static forRole(role: Role) {
    return LoggerModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        pinoHttp: {
          level: config.LOG_LEVEL,
          genReqId: requestIdOf,
          redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["proxy-authorization"]'], censor: '[redacted]' },
          autoLogging: { ignore: (request: IncomingMessage) => QUIET_PATHS.has((request.url ?? '').split('?')[0]) },
          customLogLevel: (_request: IncomingMessage, response: ServerResponse, error?: Error) =>
            error || response.statusCode >= 500 ? 'error' : response.statusCode >= 400 ? 'warn' : 'info',
          // pino-pretty runs in pino's transport thread and is loaded only when chosen.
          transport:
            logFormatFor(role, config.LOG_FORMAT, process.stdout.isTTY === true) === 'pretty'
              ? { target: 'pino-pretty', options: { colorize: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,req,res,responseTime,context', messageFormat: PRETTY_MESSAGE } }
              : undefined,
        },
      }),
    });
  }
}
