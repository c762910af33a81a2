const MiB = 1024 * 1024;
/** S3 allows 10,000 parts; aim lower so that ZIP headers and the manifest never push past the limit. */
const TARGET_MAX_PARTS = 9_000;
const MIN_PART_SIZE = 8 * MiB;
const MAX_PART_SIZE = 5 * 1024 * MiB;

/** A part size for a multipart upload of about `expectedBytes`: at least 8 MiB, whole MiB, under 9,000 parts. */
export function partSizeFor(expectedBytes: number): number {
  const needed = Math.ceil(expectedBytes / TARGET_MAX_PARTS / MiB) * MiB;
  return Math.min(MAX_PART_SIZE, Math.max(MIN_PART_SIZE, needed));
}
