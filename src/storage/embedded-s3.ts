import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import S3rver from 's3rver';
import type { AppConfig } from '../platform/config/app-config.js';

export interface EmbeddedS3 {
  endpoint: string;
  close(): Promise<void>;
}

/** The local all-in-one's S3: an s3rver on DATA_DIR at 127.0.0.1:EMBEDDED_S3_PORT, its buckets created on start. */
export async function startEmbeddedS3(config: AppConfig): Promise<EmbeddedS3> {
  const directory = path.resolve(config.DATA_DIR, 's3');
  await mkdir(directory, { recursive: true });
  const buckets = [...new Set([config.S3_BUCKET, config.assetsBucket])].map((name) => ({ name }));
  const server = new S3rver({
    address: '127.0.0.1',
    port: config.EMBEDDED_S3_PORT,
    directory,
    silent: true,
    configureBuckets: buckets,
  });
  await server.run();
  return { endpoint: `http://127.0.0.1:${config.EMBEDDED_S3_PORT}`, close: () => server.close() };
}
