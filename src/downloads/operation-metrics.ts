import { Injectable, Optional } from '@nestjs/common';
import { MetricsService } from '../platform/metrics/metrics.service.js';
import { OperationRepository } from './operation.repository.js';

/** download_operations{status}, read from Postgres when scraped, in processes that serve /metrics. */
@Injectable()
export class OperationMetrics {
  constructor(operations: OperationRepository, @Optional() metrics?: MetricsService) {
    metrics?.addCollectedGauge('download_operations', 'Download operations by status', 'status', () => operations.countByStatus());
  }
}
