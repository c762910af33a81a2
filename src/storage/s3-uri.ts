import { AppError } from '../platform/errors.js';

export interface S3Location {
  bucket: string;
  /** Always empty or ending in "/": prefixes are directories, so s3://b/p and s3://b/p/ mean the same. */
  prefix: string;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function parseS3Uri(uri: string): S3Location {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!match || !BUCKET.test(match[1])) {
    throw new AppError('INVALID_ARGUMENT', `not an S3 URI of the form s3://bucket/prefix/: ${uri}`);
  }
  const prefix = match[2].replace(/\/+$/, '');
  return { bucket: match[1], prefix: prefix === '' ? '' : `${prefix}/` };
}

export function formatS3Uri(location: S3Location): string {
  return `s3://${location.bucket}/${location.prefix}`;
}
