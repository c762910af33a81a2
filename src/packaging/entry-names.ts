/**
 * ZIP entry names that are safe to extract anywhere. S3 keys may hold anything; whatever they hold, an entry
 * name here is relative, has no "." or ".." or empty segments, no backslashes, no control characters, nothing
 * Windows refuses or silently changes (the characters < > : " | ? *, a trailing dot or space, device names such
 * as CON or LPT1), and is unique even where file systems ignore case (macOS, Windows) or where a file and a
 * folder share a name.
 */

export interface NamedSource {
  /** "inputs" or "outputs": the folder of the package the object goes to. */
  folder: 'inputs' | 'outputs';
  /** The object's key relative to its job prefix. */
  relativeKey: string;
}

const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/g;
/**
 * What Windows refuses in a name. A colon also names an NTFS alternate data stream: "report.txt:x" written as is
 * by a tool would hide its bytes in report.txt.
 */
const WINDOWS_FORBIDDEN = /[<>:"|?*]/g;
/** Windows strips these from the end of a name, so "a.txt." would land on "a.txt". */
const TRAILING_DOTS_AND_SPACES = /[. ]+$/;
/** Device names Windows will not create a file as, whatever follows their first dot ("nul.txt" too). */
const WINDOWS_DEVICE = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\.|$)/i;
/**
 * Look-alikes of "/" and "\" that Windows' best-fit mapping turns into them, in an extractor that converts
 * names to the ANSI code page ("WorstFit"): separators here, so that "．．／x" cannot become "../x" there.
 */
const SEPARATORS = /[\\/\uFF0F\uFF3C\u2215\u2044\uFE68]+/;
/** The fullwidth full stop, which the same mapping turns into ".": read as one, so dot segments are dropped. */
const FULLWIDTH_FULL_STOP = /\uFF0E/g;
/** Most file systems refuse longer segments (255 bytes); leave room for a collision suffix. */
const MAX_SEGMENT_BYTES = 200;
/** An extension this short is kept when a name is shortened, so that the file still opens with its program. */
const MAX_KEPT_EXTENSION_BYTES = 16;

function safeSegment(segment: string): string {
  const cleaned = segment.normalize('NFC').replace(FULLWIDTH_FULL_STOP, '.').replace(CONTROL_CHARACTERS, '_').replace(WINDOWS_FORBIDDEN, '_').trim().toWellFormed();
  const named = shortened(cleaned).replace(TRAILING_DOTS_AND_SPACES, '');
  return WINDOWS_DEVICE.test(named) ? `_${named}` : named;
}

/**
 * A name cut to MAX_SEGMENT_BYTES, its extension kept. Cut by whole code points: cutting a UTF-16 string by
 * units can split a surrogate pair, whose half is written as U+FFFD, so that two different emoji names would
 * become the same bytes.
 */
function shortened(name: string): string {
  if (Buffer.byteLength(name) <= MAX_SEGMENT_BYTES) return name;
  const dot = name.lastIndexOf('.');
  const extension = dot > 0 && Buffer.byteLength(name.slice(dot)) <= MAX_KEPT_EXTENSION_BYTES ? name.slice(dot) : '';
  const codePoints = Array.from(name.slice(0, name.length - extension.length));
  let bytes = Buffer.byteLength(codePoints.join('')) + Buffer.byteLength(extension);
  while (bytes > MAX_SEGMENT_BYTES) bytes -= Buffer.byteLength(codePoints.pop()!);
  return codePoints.join('').trimEnd() + extension;
}

/** The relative key as safe path segments: backslashes and look-alikes count as separators, dot segments are dropped. */
export function safeSegments(relativeKey: string): string[] {
  const segments = relativeKey
    .split(SEPARATORS)
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
 * from one build to the next). A name already taken, compared case-insensitively, or that is also the folder
 * of other entries (objects `x` and `x/y.tif`), gets the first free "~N" suffix: the folder's files keep their
 * paths, whichever comes first.
 */
export function assignEntryNames(sources: NamedSource[]): string[] {
  // Names collide when the bytes written to the ZIP (UTF-8) do, ignoring case as macOS and Windows do. Upper
  // case first, then lower: that also folds "ſ" into "s" and "ﬀ" into "ff", as APFS does.
  const fold = (path: string) => Buffer.from(path.toUpperCase().toLowerCase(), 'utf8').toString('latin1');
  const bases = sources.map((source) => [source.folder, ...safeSegments(source.relativeKey)].join('/'));
  // Every folder is known before any file is named. A suffix changes only a name's last segment, so no folder
  // appears later, and a file named after none of them never stands where a folder must.
  const folders = new Set<string>();
  for (const base of bases) {
    const parents = base.split('/').slice(0, -1);
    parents.forEach((_, index) => folders.add(fold(parents.slice(0, index + 1).join('/'))));
  }
  const files = new Set<string>();
  return bases.map((base) => {
    let name = base;
    for (let n = 2; files.has(fold(name)) || folders.has(fold(name)); n++) name = withSuffix(base, n);
    files.add(fold(name));
    return name;
  });
}
