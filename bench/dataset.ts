import { randomFillSync } from 'node:crypto';
import type { StorageRepository } from '../src/storage/storage.repository.js';
import { BENCH_BUCKETS } from './bench-config.js';

/** One generated job: its inputs and outputs prefixes hold `bytes` of raster-like objects. */
export interface DataSet {
  label: string;
  bytes: number;
  objects: number;
  inputsUri: string;
  outputsUri: string;
}

export function sizeLabel(bytes: number): string {
  const GiB = 1024 ** 3;
  const MiB = 1024 ** 2;
  if (bytes % GiB === 0) return `${bytes / GiB} GiB`;
  if (bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}

/** A little-endian TIFF header: the bytes a GeoTIFF starts with. The rest is random, i.e. incompressible. */
const TIFF_HEADER = Buffer.from([0x49, 0x49, 0x2a, 0x00, 0x08, 0x00, 0x00, 0x00]);

/** Object sizes adding up to exactly `total`, each at most `objectBytes`. */
function objectSizes(total: number, objectBytes: number): number[] {
  const sizes: number[] = [];
  for (let left = total; left > 0; left -= objectBytes) sizes.push(Math.min(objectBytes, left));
  return sizes;
}

/** Objects up to this size are written several at a time: a data set of thousands of them would take minutes. */
const SMALL_OBJECT_BYTES = 1024 * 1024;
const SMALL_OBJECT_WRITERS = 16;

/**
 * Writes (or finds from an earlier run against the same S3) a data set of `total` bytes: half the objects as
 * job inputs, half as outputs, named like satellite bands (.tif, so the compression policy stores them as the
 * service would). One large object's buffer is in memory at a time; small ones are written several at once.
 */
export async function ensureDataSet(storage: StorageRepository, total: number, objectBytes: number, label = sizeLabel(total)): Promise<DataSet> {
  const base = `datasets/${total}-${objectBytes}`;
  const dataSet: DataSet = {
    label,
    bytes: total,
    objects: 0,
    inputsUri: `s3://${BENCH_BUCKETS.assets}/${base}/inputs/`,
    outputsUri: `s3://${BENCH_BUCKETS.assets}/${base}/outputs/`,
  };
  const sizes = objectSizes(total, objectBytes);
  dataSet.objects = sizes.length;
  const keys = sizes.map((_, index) => {
    const band = String(index + 1).padStart(3, '0');
    return index % 2 === 0 ? `${base}/inputs/scene/B${band}.tif` : `${base}/outputs/scene/R${band}.tif`;
  });

  const existing = new Map<string, number>();
  for await (const object of storage.listObjects({ bucket: BENCH_BUCKETS.assets, prefix: `${base}/` })) {
    existing.set(object.key, object.size);
  }
  const missing = keys.map((key, index) => ({ key, size: sizes[index] })).filter(({ key, size }) => existing.get(key) !== size);
  const writers = objectBytes <= SMALL_OBJECT_BYTES ? SMALL_OBJECT_WRITERS : 1;
  let next = 0;
  await Promise.all(
    Array.from({ length: writers }, async () => {
      let buffer: Buffer | undefined;
      while (next < missing.length) {
        const { key, size } = missing[next++];
        if (!buffer || buffer.length !== size) buffer = Buffer.allocUnsafe(size);
        randomFillSync(buffer);
        TIFF_HEADER.copy(buffer, 0, 0, Math.min(TIFF_HEADER.length, buffer.length));
        await storage.putObject(BENCH_BUCKETS.assets, key, buffer, 'image/tiff');
      }
    }),
  );
  return dataSet;
}
