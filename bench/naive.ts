import { ZipArchive } from 'archiver';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { finished, pipeline } from 'node:stream/promises';
import type { PackageUploads } from '../src/packaging/package-uploads.js';
import type { StorageRepository } from '../src/storage/storage.repository.js';
import type { PlannedEntry } from '../src/packaging/package-builder.js';
import { partSizeFor, uploadQueueSizeFor } from '../src/packaging/part-size.js';
import { uploadBufferBytes } from './bench-config.js';

/**
 * The pipeline the service was designed not to be, for contrast: download every object to a temp folder, zip
 * the files into a temp file, upload the file, delete the temps. Same S3 client, part size and queue depth.
 */
export async function naivePackage(
  storage: StorageRepository,
  uploads: PackageUploads,
  entries: PlannedEntry[],
  destination: { bucket: string; key: string },
  tmpDir: string,
  stageSeconds: Record<string, number> = {},
): Promise<number> {
  const folder = await mkdtemp(path.join(tmpDir, 'jd-bench-naive-'));
  let stageStarted = process.hrtime.bigint();
  // Each stage's wall time, so that the report can say which one the naive pipeline waits on.
  const endStage = (name: string) => {
    const now = process.hrtime.bigint();
    stageSeconds[name] = Number(now - stageStarted) / 1e9;
    stageStarted = now;
  };
  try {
    await mkdir(path.join(folder, 'sources'));
    const files: string[] = [];
    for (const [index, entry] of entries.entries()) {
      const file = path.join(folder, 'sources', String(index));
      await pipeline(await storage.openObject(entry.bucket, entry.key), createWriteStream(file));
      files.push(file);
    }
    endStage('download');

    const zipFile = path.join(folder, 'package.zip');
    const archive = new ZipArchive({ zlib: { level: 1 } });
    const written = createWriteStream(zipFile);
    archive.pipe(written);
    const date = new Date();
    entries.forEach((entry, index) => archive.append(createReadStream(files[index]), { name: entry.path, store: entry.store, date }));
    await archive.finalize();
    await finished(written);
    endStage('zip');

    const { size } = await stat(zipFile);
    const upload = uploads.create(createReadStream(zipFile), {
      bucket: destination.bucket,
      key: destination.key,
      partSize: partSizeFor(size),
      queueSize: uploadQueueSizeFor(partSizeFor(size), uploadBufferBytes()),
      contentType: 'application/zip',
    });
    await upload.done();
    endStage('upload');
    return size;
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}
