import { HeadObjectCommand } from '@aws-sdk/client-s3';
import type { StorageRepository } from '../src/storage/storage.repository.js';

/** The object a pipeline wrote must be there, whole; it is then deleted so that s3rver's folder stays small. */
export async function checkAndDelete(storage: StorageRepository, destination: { bucket: string; key: string }, bytes: number): Promise<void> {
  const head = await storage.client.send(new HeadObjectCommand({ Bucket: destination.bucket, Key: destination.key }));
  if (head.ContentLength !== bytes) {
    throw new Error(`s3://${destination.bucket}/${destination.key} holds ${head.ContentLength} bytes, the pipeline wrote ${bytes}`);
  }
  await storage.deleteObject(destination.bucket, destination.key);
}
