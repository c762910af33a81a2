import { Module } from '@nestjs/common';
import { OperationEvents } from './operation-events.js';

/** "Operation settled" events over Redis pub/sub: workers announce, API processes wake their waiters. */
@Module({ providers: [OperationEvents], exports: [OperationEvents] })
export class OperationEventsModule {}
