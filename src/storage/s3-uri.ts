import { AppError } from '../platform/errors.js';

/** Where packages are written in S3_BUCKET; sources may never be read from there. */
export const PACKAGES_PREFIX = 'packages/';

export interface S3Location {
  bucket: string;
  /** Always empty or ending in "/": prefixes are directories, so s3://b/p and s3://b/p/ mean the same. */
  prefix: string;
}

/**
 * Where a job's assets are: every object under a prefix (`s3://bucket/prefix/`, `s3://bucket/` for the whole
 * bucket), or one object (`s3://bucket/key`). A URI without its final slash that names no object is read
 * as the folder of that name, as `s3://b/p` always meant `s3://b/p/`.
 */
export type Source = { bucket: string; prefix: string; key?: undefined } | { bucket: string; key: string; prefix?: undefined };

/** S3's bucket naming rules: 3 to 63 of a-z 0-9 . -, starting and ending with a letter or digit, not an IP. */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const IP_ADDRESS = /^\d+\.\d+\.\d+\.\d+$/;
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
const MAX_KEY_BYTES = 1024;

export function isBucketName(name: string): boolean {
  return BUCKET.test(name) && !name.includes('..') && !IP_ADDRESS.test(name);
}

export function parseS3Uri(uri: string): S3Location {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!match || !isBucketName(match[1])) {
    throw new AppError('INVALID_ARGUMENT', `not an S3 URI of the form s3://bucket/prefix/: ${uri}`);
  }
  const prefix = match[2].replace(/\/+$/, '');
  return { bucket: match[1], prefix: prefix === '' ? '' : `${prefix}/` };
}

export function formatS3Uri(location: S3Location): string {
  return `s3://${location.bucket}/${location.prefix}`;
}

/** A source URI, or why it is not one (a sentence for the caller). */
export function parseSource(uri: string): Source | { problem: string } {
  const match = /^s3:\/\/([^/]*)(\/(.*))?$/s.exec(uri);
  if (!match) return { problem: 'must be an S3 URI: s3://bucket/prefix/ or s3://bucket/key' };
  const [, bucket, slash, key = ''] = match;
  if (!isBucketName(bucket)) return { problem: `"${bucket}" is not a valid bucket name (3 to 63 of a-z 0-9 . -)` };
  if (!slash) return { problem: 'names no object: use s3://bucket/ for the whole bucket, or s3://bucket/key' };
  if (CONTROL_CHARACTERS.test(key)) return { problem: 'must not contain control characters' };
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) return { problem: `its key must be at most ${MAX_KEY_BYTES} bytes` };
  if (hasAmbiguousSegment(key)) return { problem: 'must not contain empty, "." or ".." path segments' };
  return key === '' || key.endsWith('/') ? { bucket, prefix: key } : { bucket, key };
}

/**
 * S3 keeps `a/../b` and `a//b` as written, but S3-compatible stores and proxies that normalise paths read
 * another key, so such a URI could name an object the rules above never saw (a package, say). The final
 * empty segment of a prefix (`p/`) is not one of them.
 */
function hasAmbiguousSegment(key: string): boolean {
  const segments = key.split('/');
  if (key.endsWith('/')) segments.pop();
  return key !== '' && segments.some((segment) => segment === '' || segment === '.' || segment === '..');
}

export function formatSource(source: Source): string {
  return `s3://${source.bucket}/${source.key ?? source.prefix}`;
}
