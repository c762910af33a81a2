const MiB = 1024 * 1024;
/** S3 allows 10,000 parts; aim lower so that ZIP headers and the manifest never push past the limit. */
const TARGET_MAX_PARTS = 9_000;
const MIN_PART_SIZE = 8 * MiB;
const MAX_PART_SIZE = 5 * 1024 * MiB;

/** ZIP headers, data descriptor, central record and manifest line per entry, beside the name, generously. */
const OVERHEAD_BYTES_PER_ENTRY = 1024;
/** Deflate's worst case on data it cannot shrink: 5 bytes per stored block of 16 KiB or more (zlib), rounded up. */
const DEFLATE_GROWTH = 1 / 1000;

/**
 * At most how large the ZIP of these entries will be, known before any byte is read: every byte of them (a
 * deflated entry grows by at most DEFLATE_GROWTH), and per entry the ZIP's records and its manifest line, which
 * hold its name three times and its source once (the key is at least as long as the name).
 */
export function expectedPackageBytes(entries: ReadonlyArray<{ size: number; key: string }>): number {
  return entries.reduce((sum, entry) => sum + Math.ceil(entry.size * (1 + DEFLATE_GROWTH)) + OVERHEAD_BYTES_PER_ENTRY + 4 * entry.key.length, MiB);
}

/** A part size for a multipart upload of about `expectedBytes`: at least 8 MiB, whole MiB, under 9,000 parts. */
export function partSizeFor(expectedBytes: number): number {
  const needed = Math.ceil(expectedBytes / TARGET_MAX_PARTS / MiB) * MiB;
  return Math.min(MAX_PART_SIZE, Math.max(MIN_PART_SIZE, needed));
}

/**
 * What a build's upload part buffers may hold by default (UPLOAD_BUFFER_MIB): four 8 MiB parts, any of them in
 * flight while the writer has a free one to fill. That keeps pace with the reads at the default fetch settings; a fifth made no build faster and
 * cost a worker 8 MiB more (BENCHMARKS.md, "S3-like network").
 */
export const DEFAULT_UPLOAD_BUFFER_BYTES = 32 * MiB;

/**
 * The upload's queue size (PooledMultipartUpload keeps queueSize + 1 part buffers) for a part size: as many
 * buffers as the budget holds, at least two. Packages past 70 GiB need parts over 8 MiB (S3's 10,000-part
 * limit), so fewer are kept and the memory stays within the budget, down to two parts (one sent while the next
 * fills, the least a pipelined upload needs) once a part is over a third of it.
 */
export function uploadQueueSizeFor(partSize: number, budgetBytes = DEFAULT_UPLOAD_BUFFER_BYTES): number {
  return Math.max(1, Math.floor(budgetBytes / partSize) - 1);
}
