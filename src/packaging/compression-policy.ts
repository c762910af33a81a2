import type { CompressionMode } from '../platform/config/app-config.js';

// Formats that are already compressed: deflating them costs CPU and saves nothing.
const ALREADY_COMPRESSED = new Set([
  'tif', 'tiff', 'gtiff', 'cog', 'jp2', 'j2k', 'jpf', 'jpx', 'jpg', 'jpeg', 'png', 'webp', 'gif', 'avif', 'heic',
  'zip', 'gz', 'tgz', 'bz2', 'tbz2', 'xz', 'txz', 'zst', 'zstd', 'lz4', '7z', 'rar', 'br',
  'nc', 'nc4', 'cdf', 'h5', 'hdf', 'hdf5', 'he5', 'h4', 'parquet', 'orc', 'avro', 'arrow', 'feather',
  'laz', 'kmz', 'mbtiles', 'pmtiles', 'mp4', 'mov', 'mkv', 'webm', 'mp3', 'pdf',
]);

// Text-like formats that shrink several times under a fast deflate.
const TEXT_LIKE = new Set([
  'json', 'geojson', 'ndjson', 'jsonl', 'xml', 'gml', 'kml', 'csv', 'tsv', 'txt', 'text', 'md', 'html', 'htm',
  'yaml', 'yml', 'toml', 'ini', 'cfg', 'conf', 'log', 'sql', 'wkt', 'prj', 'vrt', 'svg', 'qml', 'sld', 'aux',
  'hdr', 'met', 'mtl', 'rpc', 'rpb', 'imd', 'til', 'stac',
]);

function extensionOf(path: string): string {
  const name = path.slice(path.lastIndexOf('/') + 1).toLowerCase();
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot + 1) : '';
}

/**
 * Whether an entry is stored rather than deflated. In `auto`, only known text-like formats are deflated:
 * unknown data is stored, so compression can never make packaging of large rasters CPU-bound.
 */
export function shouldStore(path: string, mode: CompressionMode): boolean {
  if (mode === 'store') return true;
  if (mode === 'deflate') return false;
  const extension = extensionOf(path);
  if (ALREADY_COMPRESSED.has(extension)) return true;
  return !TEXT_LIKE.has(extension);
}
