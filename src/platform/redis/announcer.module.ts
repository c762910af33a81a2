import { Module } from '@nestjs/common';
import { Announcer } from './announcer.js';

/** Announcements over Redis pub/sub, for the service's processes and the CLI alike. */
@Module({ providers: [Announcer], exports: [Announcer] })
export class AnnouncerModule {}
