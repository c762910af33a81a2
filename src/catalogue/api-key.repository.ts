import { Injectable } from '@nestjs/common';
import type { ApiKey } from '../generated/prisma/client.js';
import { PrismaService } from '../platform/prisma/prisma.service.js';

export type StoredApiKey = Pick<ApiKey, 'id' | 'organisationId' | 'revokedAt'>;

/** API keys, stored only as SHA-256 hashes. */
@Injectable()
export class ApiKeyRepository {
  constructor(private readonly prisma: PrismaService) {}

  create(data: { organisationId: string; name: string; prefix: string; hash: string }): Promise<ApiKey> {
    return this.prisma.apiKey.create({ data });
  }

  findByHash(hash: string): Promise<StoredApiKey | null> {
    return this.prisma.apiKey.findUnique({
      where: { hash },
      select: { id: true, organisationId: true, revokedAt: true },
    });
  }

  findById(id: string): Promise<ApiKey | null> {
    return this.prisma.apiKey.findUnique({ where: { id } });
  }

  /** Revoking twice keeps the first revocation time. */
  async revoke(id: string, at: Date): Promise<ApiKey> {
    await this.prisma.apiKey.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: at } });
    return this.prisma.apiKey.findUniqueOrThrow({ where: { id } });
  }

  async touchLastUsed(id: string, at: Date): Promise<void> {
    await this.prisma.apiKey.update({ where: { id }, data: { lastUsedAt: at }, select: { id: true } });
  }
}
