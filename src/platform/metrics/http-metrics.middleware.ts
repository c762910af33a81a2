import type { NextFunction, Request, Response } from 'express';
import type { MetricsService } from './metrics.service.js';

/**
 * Counts and times every request when its response is finished, labelled by the route pattern (not the
 * raw path, whose ids would explode the label set); requests that matched no route are "unmatched".
 */
export function httpMetrics(metrics: MetricsService) {
  return (request: Request, response: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    response.once('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = (request.route?.path as string | undefined) ?? 'unmatched';
      metrics.recordRequest(request.method, route, response.statusCode, seconds);
    });
    next();
  };
}
