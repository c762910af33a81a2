import type { AppConfig } from '../platform/config/app-config.js';
import type { ErrorDetail } from '../platform/errors.js';
import { parseSource, PACKAGES_PREFIX } from '../storage/s3-uri.js';

/** Sources per side of a job or task, at most: a registration stays one bounded transaction. */
export const MAX_SOURCES_PER_SIDE = 10_000;
/** Tasks one registration may list: all are written in the registration's one transaction. */
export const MAX_TASKS = 10_000;

/**
 * The rules every source obeys, from the catalogue API and the CLI alike: a valid S3 URI, in one of
 * ASSET_BUCKETS, and never under the packages' own prefix (a job must not package packages). Returns one
 * detail per problem, naming its field (`inputs[2]`).
 */
export function checkSources(field: string, uris: readonly string[], config: AppConfig): ErrorDetail[] {
  if (uris.length > MAX_SOURCES_PER_SIDE) return [{ field, message: `at most ${MAX_SOURCES_PER_SIDE} sources` }];
  const problems: ErrorDetail[] = [];
  uris.forEach((uri, index) => {
    const problem = sourceProblem(uri, config);
    if (problem) problems.push({ field: `${field}[${index}]`, message: problem });
  });
  return problems;
}

function sourceProblem(uri: string, config: AppConfig): string | undefined {
  const source = parseSource(uri);
  if ('problem' in source) return source.problem;
  if (!config.assetBuckets.includes(source.bucket)) return `bucket "${source.bucket}" is not one of ASSET_BUCKETS (${config.assetBuckets.join(', ')})`;
  // A source without its final slash may be read as a folder, so it is compared as one too.
  const path = source.prefix ?? `${source.key}/`;
  if (source.bucket === config.S3_BUCKET && (path.startsWith(PACKAGES_PREFIX) || PACKAGES_PREFIX.startsWith(path))) {
    return `must not be under the packages' own prefix s3://${config.S3_BUCKET}/${PACKAGES_PREFIX}`;
  }
  return undefined;
}
