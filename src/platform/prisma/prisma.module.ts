import { Global, Module } from '@nestjs/common';
import { PrismaService } from './prisma.service.js';

/** The process's one Prisma client and Postgres pool. */
@Global()
@Module({ providers: [PrismaService], exports: [PrismaService] })
export class PrismaModule {}
