/**
 * ZIP entry names that are safe to extract anywhere. S3 keys may hold anything; whatever they hold, an entry
 * name here is relative, has no "." or ".." or empty segments, no backslashes, no control characters, and is
 * unique even where file systems ignore case (macOS, Windows) or where a file and a folder share a name.
 */

export interface NamedSource {
  /** "inputs" or "outputs": the folder of the package the object goes to. */
  folder: 'inputs' | 'outputs';
  /** The object's key relative to its job prefix. */
  relativeKey: string;
}

const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/g;
/** Most file systems refuse longer segments (255 bytes); leave room for a collision suffix. */
const MAX_SEGMENT_BYTES = 200;

/**
 * Cut by whole code points: cutting a UTF-16 string by units can split a surrogate pair, whose half is written
 * as U+FFFD, so that two different emoji names would become the same bytes.
 */
function safeSegment(segment: string): string {
  const codePoints = Array.from(segment.normalize('NFC').replace(CONTROL_CHARACTERS, '_').trim().toWellFormed());
  let bytes = Buffer.byteLength(codePoints.join(''));
  while (bytes > MAX_SEGMENT_BYTES) bytes -= Buffer.byteLength(codePoints.pop()!);
  return codePoints.join('');
}

/** The relative key as safe path segments: backslashes count as separators, dot segments are dropped. */
export function safeSegments(relativeKey: string): string[] {
  const segments = relativeKey
    .split(/[\\/]+/)
    .map(safeSegment)
    .filter((segment) => segment !== '' && segment !== '.' && segment !== '..');
  return segments.length > 0 ? segments : ['unnamed'];
}

function withSuffix(path: string, n: number): string {
  const slash = path.lastIndexOf('/');
  const dot = path.lastIndexOf('.');
  // "a/b.tif" → "a/b~2.tif"; a leading dot ("a/.env") is part of the name, not an extension.
  if (dot > slash + 1) return `${path.slice(0, dot)}~${n}${path.slice(dot)}`;
  return `${path}~${n}`;
}

/**
 * Assigns each source its entry name, in the order given (callers sort sources by key, so suffixes are stable
 * from one build to the next). A name already taken, compared case-insensitively, or clashing with a folder
 * of another entry, gets the first free "~N" suffix.
 */
export function assignEntryNames(sources: NamedSource[]): string[] {
  const files = new Set<string>();
  const folders = new Set<string>(['inputs', 'outputs']);
  const names: string[] = [];
  // Names collide when the bytes written to the ZIP (UTF-8) do, ignoring case as macOS and Windows do.
  const fold = (path: string) => Buffer.from(path.toLowerCase(), 'utf8').toString('latin1');
  for (const source of sources) {
    let base = [source.folder, ...safeSegments(source.relativeKey)].join('/');
    const parents = base.split('/').slice(0, -1);
    // A file under a folder that is already a file's name cannot be extracted: put it directly in its folder.
    if (parents.some((_, index) => files.has(fold(parents.slice(0, index + 1).join('/'))))) {
      base = `${source.folder}/${base.slice(base.lastIndexOf('/') + 1)}`;
    }
    let name = base;
    for (let n = 2; files.has(fold(name)) || folders.has(fold(name)); n++) name = withSuffix(base, n);
    files.add(fold(name));
    const nameParents = name.split('/').slice(0, -1);
    nameParents.forEach((_, index) => folders.add(fold(nameParents.slice(0, index + 1).join('/'))));
    names.push(name);
  }
  return names;
}
