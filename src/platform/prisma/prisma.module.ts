import { Global, Module } from '@nestjs/common';
import { PrismaService } from './prisma.service.js';
import { SchemaStatus } from './schema-status.js';

/** The process's one Prisma client and Postgres pool, and whether the database has this build's schema. */
@Global()
@Module({ providers: [PrismaService, SchemaStatus], exports: [PrismaService, SchemaStatus] })
export class PrismaModule {}
