import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { StorageModule } from '../../storage/storage.module.js';
import { HealthController } from './health.controller.js';

/** /healthz and /readyz, served by every role. Readiness asks Postgres, Redis and the packages bucket. */
@Module({
  imports: [TerminusModule, StorageModule],
  controllers: [HealthController],
})
export class HealthModule {}
