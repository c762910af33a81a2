import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type S3rver from 's3rver';

/**
 * CompleteMultipartUpload for the bench's s3rver, done the way S3 does it rather than the way s3rver does.
 *
 * s3rver assembles an object by streaming its parts through one MD5 in 64 KiB chunks on its single thread:
 * 4.4 to 6 s per GiB during which the client waits for the answer. S3 answers a complete in a fraction of a
 * second whatever the size, because it hashes parts as they arrive and gives a multipart object the ETag
 * MD5(part MD5s)-N. That wait, paid once per upload by every loopback pipeline, is a constant that S3 does not
 * have, and it was the larger part of each pipeline's time (see BENCHMARKS.md, "What limits each figure").
 *
 * Here the parts are checked against the ETags the client lists (S3's InvalidPart, which s3rver skips), copied
 * into the object with whole-part reads and writes (the kernel's copies, on the thread pool), and the object
 * gets S3's multipart ETag. Everything s3rver reads afterwards (the object file, its metadata, its ETag file)
 * is laid out as s3rver's own complete leaves it. BENCH_S3_COMPLETE=rewrite keeps s3rver's own.
 */

/** The part of s3rver's FilesystemStore (lib/stores/filesystem.js) this relies on. */
interface FilesystemStore {
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
  putMetadata(bucket: string, key: string, metadata: Record<string, string>, md5: string): Promise<void>;
  putObjectMultipart(bucket: string, uploadId: string, parts: ListedPart[]): Promise<{ size: number; md5: string }>;
}

interface ListedPart {
  number: number;
  /** The ETag the client was given for the part, without quotes. */
  etag: string;
}

type S3ErrorClass = new (code: string, message: string, detail?: Record<string, unknown>) => Error;
const S3Error = createRequire(import.meta.url)('s3rver/lib/models/error.js') as S3ErrorClass;

/** The store `server` serves from; not part of s3rver's typed surface. */
export function storeOf(server: S3rver): FilesystemStore {
  return (server as unknown as { store: FilesystemStore }).store;
}

/** Makes `server` complete multipart uploads as S3 does, before it runs. */
export function completeUploadsLikeS3(server: S3rver): void {
  const store = storeOf(server);
  store.putObjectMultipart = async (bucket, uploadId, listed) => {
    const uploadDir = path.join(store.getResourcePath(bucket, undefined, 'uploads'), uploadId);
    const [key, metadata] = await Promise.all([
      readFile(path.join(uploadDir, 'key'), 'utf8'),
      readFile(path.join(uploadDir, 'metadata'), 'utf8').then((text) => JSON.parse(text) as Record<string, string>),
    ]);
    const parts = [...listed].sort((a, b) => a.number - b.number);
    // One part at a time: an upload may have 10,000 parts, more than this process may hold files open.
    const digests: Buffer[] = [];
    for (const part of parts) {
      const md5 = await readFile(path.join(uploadDir, `${part.number}.md5`), 'utf8').catch(() => '');
      if (md5 === '' || md5 !== part.etag) {
        throw new S3Error('InvalidPart', "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not have matched the part's entity tag.");
      }
      digests.push(Buffer.from(md5, 'hex'));
    }
    const objectPath = store.getResourcePath(bucket, key, 'object');
    await mkdir(path.dirname(objectPath), { recursive: true });
    const size = await joinFiles(
      parts.map((part) => path.join(uploadDir, String(part.number))),
      objectPath,
    );
    const md5 = `${createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${parts.length}`;
    await store.putMetadata(bucket, key, metadata, md5);
    await rm(uploadDir, { recursive: true, force: true });
    return { size, md5 };
  };
}

/**
 * Copies `sources` one after another into `target` through one reused buffer. A fresh buffer per part (readFile)
 * cost a page fault per 4 KiB on this VM: 1.6 to 3.7 s of system time per GiB, against 0.9 to 1.1 s this way,
 * which is the kernel allocating the object's pages in RAM and copying into them (1 MiB and 256 KiB buffers:
 * no faster).
 */
async function joinFiles(sources: string[], target: string): Promise<number> {
  const buffer = Buffer.allocUnsafeSlow(JOIN_BUFFER_BYTES);
  const output = await open(target, 'w');
  let size = 0;
  try {
    for (const source of sources) {
      const input = await open(source, 'r');
      try {
        for (;;) {
          const { bytesRead } = await input.read(buffer, 0, buffer.length, null);
          if (bytesRead === 0) break;
          await output.write(buffer, 0, bytesRead);
          size += bytesRead;
        }
      } finally {
        await input.close();
      }
    }
  } finally {
    await output.close();
  }
  return size;
}

const JOIN_BUFFER_BYTES = 8 * 1024 * 1024;
