import { Injectable, Logger } from '@nestjs/common';
import { createHash, randomBytes } from 'node:crypto';
import { AppConfig } from '../platform/config/app-config.js';
import { UUID_PATTERN } from './ids.js';
import { AppError } from '../platform/errors.js';
import { ApiKeyRepository, StoredApiKey } from './api-key.repository.js';
import { Announcer } from '../platform/redis/announcer.js';
import { TtlCache } from '../utils/ttl-cache.js';

export interface Caller {
  keyId: string;
  organisationId: string;
}

const KEY_PREFIX = 'jdk_';
/** Announced when a key is revoked: every API process empties its cache of lookups. */
const KEY_REVOKED = 'api-key-revoked';
/** How many characters of a key are stored to recognise it in listings: the marker and 6 random characters. */
const DISPLAY_PREFIX_LENGTH = KEY_PREFIX.length + 6;
/** last_used_at is a hint for operators, not an audit log: at most one write a minute per key. */
const LAST_USED_WRITE_INTERVAL_MS = 60_000;

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Issues, revokes and recognises API keys. Keys are 32 random bytes, shown once and stored as SHA-256. */
@Injectable()
export class ApiKeyService {
  private readonly logger = new Logger(ApiKeyService.name);
  private readonly known: TtlCache<string, StoredApiKey>;
  // Unknown keys are cached too, so that one bad key repeated cannot turn into a flood of queries; apart from
  // the known ones, so that a flood of distinct bad keys only pushes out other bad keys, never a caller's.
  private readonly unknown: TtlCache<string, null>;
  private readonly lastUsedWrites = new Map<string, number>();
  /** Revocations announced by any process empty this process's cache: subscribed on the first lookup. */
  private listening: Promise<void> | undefined;

  constructor(
    private readonly keys: ApiKeyRepository,
    private readonly announcer: Announcer,
    config: AppConfig,
  ) {
    this.known = new TtlCache(config.API_KEY_CACHE_SECONDS * 1000);
    this.unknown = new TtlCache(config.API_KEY_CACHE_SECONDS * 1000);
  }

  async create(organisationId: string, name: string): Promise<{ id: string; key: string; prefix: string }> {
    const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
    const prefix = key.slice(0, DISPLAY_PREFIX_LENGTH);
    const stored = await this.keys.create({ organisationId, name, prefix, hash: hashApiKey(key) });
    return { id: stored.id, key, prefix };
  }

  async revoke(id: string): Promise<{ id: string; revoked_at: string }> {
    const existing = UUID_PATTERN.test(id) ? await this.keys.findById(id) : null;
    if (!existing) throw new AppError('NOT_FOUND', `no API key with id ${id}`);
    const revoked = await this.keys.revoke(id, new Date());
    this.forgetLookups();
    await this.announcer.announce(KEY_REVOKED, id);
    return { id: revoked.id, revoked_at: (revoked.revokedAt as Date).toISOString() };
  }

  /**
   * Recognises a presented key. Lookups are cached for API_KEY_CACHE_SECONDS, so the hot path costs no
   * database read; a revocation announced over Redis empties the cache of every API process at once (and
   * without Redis, a revoked key stops working within API_KEY_CACHE_SECONDS).
   */
  async authenticate(presented: string): Promise<Caller> {
    this.listening ??= this.announcer.listen(KEY_REVOKED, () => this.forgetLookups()).catch((error: Error) => {
      this.logger.warn(`not listening for key revocations: ${error.message}`);
    });
    const hash = hashApiKey(presented);
    const stored = await this.lookup(hash);
    if (!stored || stored.revokedAt) throw new AppError('UNAUTHENTICATED', 'the API key is unknown or revoked');
    this.noteUse(stored.id);
    return { keyId: stored.id, organisationId: stored.organisationId };
  }

  private async lookup(hash: string): Promise<StoredApiKey | null> {
    const cached = this.known.get(hash) ?? this.unknown.get(hash);
    if (cached !== undefined) return cached;
    // A lookup that a revocation clears the cache after is used once, not stored: it may be what was revoked.
    const readAt = { known: this.known.generation, unknown: this.unknown.generation };
    const key = await this.keys.findByHash(hash);
    if (key) this.known.set(hash, key, Date.now(), readAt.known);
    else this.unknown.set(hash, null, Date.now(), readAt.unknown);
    return key;
  }

  private forgetLookups(): void {
    this.known.clear();
    this.unknown.clear();
  }

  private noteUse(keyId: string): void {
    const now = Date.now();
    const last = this.lastUsedWrites.get(keyId) ?? 0;
    if (now - last < LAST_USED_WRITE_INTERVAL_MS) return;
    this.lastUsedWrites.set(keyId, now);
    this.keys.touchLastUsed(keyId, new Date(now)).catch((error: unknown) => {
      this.logger.warn(`could not record last use of key ${keyId}: ${(error as Error).message}`);
    });
  }
}
