import { Injectable } from '@nestjs/common';
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AppConfig } from '../platform/config/app-config.js';
import { AppError } from '../platform/errors.js';

const SECRET_PREFIX = 'whsec_';
const CIPHER = 'aes-256-gcm';
const FORMAT = 'v1';

/** Where the local all-in-one keeps a generated WEBHOOK_SECRET_KEY when none is configured. */
export function localKeyFile(config: AppConfig): string {
  return path.resolve(config.DATA_DIR, 'webhook-secret.key');
}

/**
 * Whether this process may use the key file: only the local all-in-one (it runs the embedded S3, without
 * S3_ENDPOINT) and the CLI run beside it. Any other process (an api or a worker whose DATA_DIR volume holds an
 * old file, a CLI aimed at production from a folder where `npm start` once ran) would encrypt secrets under a
 * key that the workers do not have, and every delivery to that endpoint would fail.
 */
export function mayUseLocalKeyFile(config: AppConfig): boolean {
  return !config.WEBHOOK_SECRET_KEY && config.usesEmbeddedS3;
}

/** The local all-in-one's own key, generated once and kept in DATA_DIR (readable by its owner only). */
export async function ensureLocalWebhookKey(config: AppConfig): Promise<void> {
  if (!mayUseLocalKeyFile(config)) return;
  const file = localKeyFile(config);
  if (await readFile(file, 'utf8').then((key) => key.trim().length >= 32, () => false)) return;
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'w' });
}

/**
 * Webhook signing secrets: generated as Standard Webhooks spells them (`whsec_` and 32 random bytes in
 * base64), shown once, and stored encrypted (AES-256-GCM) under a key derived with HKDF from
 * WEBHOOK_SECRET_KEY, or from the local all-in-one's key file. HMAC signing needs the secret itself, so it
 * cannot be stored hashed as API keys are.
 */
@Injectable()
export class WebhookSecrets {
  private key: Buffer | undefined;

  constructor(private readonly config: AppConfig) {}

  generate(): string {
    return `${SECRET_PREFIX}${randomBytes(32).toString('base64')}`;
  }

  encrypt(secret: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv(CIPHER, this.encryptionKey(), iv);
    const ciphertext = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    return [FORMAT, iv.toString('base64'), cipher.getAuthTag().toString('base64'), ciphertext.toString('base64')].join(':');
  }

  decrypt(stored: string): string {
    const [format, iv, tag, ciphertext] = stored.split(':');
    if (format !== FORMAT) throw new Error(`unknown secret format ${format}`);
    const decipher = createDecipheriv(CIPHER, this.encryptionKey(), Buffer.from(iv, 'base64'));
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64')), decipher.final()]).toString('utf8');
  }

  private encryptionKey(): Buffer {
    this.key ??= Buffer.from(hkdfSync('sha256', this.keyMaterial(), 'job-download-service', 'webhook-secrets', 32));
    return this.key;
  }

  private keyMaterial(): string {
    if (this.config.WEBHOOK_SECRET_KEY) return this.config.WEBHOOK_SECRET_KEY;
    const file = localKeyFile(this.config);
    if (mayUseLocalKeyFile(this.config) && existsSync(file)) return readFileSync(file, 'utf8').trim();
    throw new AppError('SERVICE_UNAVAILABLE', 'webhooks need WEBHOOK_SECRET_KEY (at least 32 characters); only the local all-in-one, with its embedded S3, keeps one in DATA_DIR');
  }
}
