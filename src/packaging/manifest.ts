import { Readable } from 'node:stream';

export interface ManifestEntry {
  path: string;
  source: string;
  size: number;
  etag: string;
  sha256: string;
}

/** Entries per chunk of the manifest stream: small chunks, few of them. */
const ENTRIES_PER_CHUNK = 256;

/**
 * manifest.json as a stream, byte for byte what `JSON.stringify({...fields, entries}, null, 2)` and a final
 * newline would give, without ever holding it as one string (V8 refuses strings past about 512 MiB, which
 * a job of a million entries reaches).
 */
export function manifestStream(fields: Record<string, string>, entries: readonly ManifestEntry[]): Readable {
  return Readable.from(manifestChunks(fields, entries), { objectMode: false });
}

function* manifestChunks(fields: Record<string, string>, entries: readonly ManifestEntry[]): Generator<string> {
  const head = JSON.stringify({ ...fields, entries: [] }, null, 2);
  if (entries.length === 0) {
    yield `${head}\n`;
    return;
  }
  // Everything before the entries' "[]", then each entry indented as JSON.stringify would nest it.
  yield `${head.slice(0, head.lastIndexOf('[]'))}[\n`;
  let chunk = '';
  for (let index = 0; index < entries.length; index++) {
    const entry = JSON.stringify(entries[index], null, 2).replaceAll('\n', '\n    ');
    chunk += `    ${entry}${index + 1 < entries.length ? ',' : ''}\n`;
    if ((index + 1) % ENTRIES_PER_CHUNK === 0) {
      yield chunk;
      chunk = '';
    }
  }
  yield `${chunk}  ]\n}\n`;
}
