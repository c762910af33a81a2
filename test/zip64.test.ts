import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ZipArchiveWriter } from '../src/packaging/zip-writer.js';
import { inspectZip, unzipTest } from './support/harness.js';

const GiB = 1024 ** 3;
const date = new Date('2026-11-29T12:00:00Z');

/** `bytes` of generated data in 1 MiB chunks: a stand-in for a huge raster, so the suite need not upload it. */
function generated(bytes: number): Readable {
  const chunk = Buffer.alloc(1024 * 1024, 0x5a);
  let left = bytes;
  return new Readable({
    highWaterMark: chunk.length,
    read() {
      if (left <= 0) return void this.push(null);
      const size = Math.min(left, chunk.length);
      left -= size;
      this.push(size === chunk.length ? chunk : chunk.subarray(0, size));
    },
  });
}

/** ZIP64 is needed past 65,535 entries and past 4 GiB; an independent reader must accept the result. */
describe('ZIP64 packages', () => {
  let scratch: string;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'zip64-'));
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  async function write(file: string, fill: (writer: ZipArchiveWriter) => Promise<void>): Promise<void> {
    const sut = new ZipArchiveWriter(1);
    const written = pipeline(sut.output, createWriteStream(file));
    await fill(sut);
    await sut.finalize();
    await written;
  }

  it('writes more than 65,535 entries', async () => {
    const file = path.join(scratch, 'many.zip');
    const count = 65_536 + 100;

    await write(file, async (writer) => {
      for (let i = 0; i < count; i++) await writer.addBuffer(`inputs/tile-${i}.txt`, Buffer.from(`tile ${i}\n`), { store: true, date });
    });

    const zip = inspectZip(file, { namesOnly: true });
    expect(zip.count).toBe(count);
    expect(zip.entries[count - 1].name).toBe(`inputs/tile-${count - 1}.txt`);
    expect(unzipTest(file)).toContain('No errors detected');
  }, 180_000);

  it('writes an entry and an archive larger than 4 GiB', async () => {
    const file = path.join(scratch, 'large.zip');
    const big = 4 * GiB + 5 * 1024 * 1024;

    await write(file, async (writer) => {
      await writer.addBuffer('inputs/small.json', Buffer.from('{}'), { store: false, date });
      const entry = await writer.addStream('outputs/huge.tif', generated(big), { store: true, date });
      expect(entry.bytes).toBe(big);
      await writer.addBuffer('manifest.json', Buffer.from('{}'), { store: false, date });
    });

    expect((await stat(file)).size).toBeGreaterThan(big);
    const zip = inspectZip(file, { namesOnly: true });
    expect(zip.entries.map((e) => [e.name, e.size])).toEqual([
      ['inputs/small.json', 2],
      ['outputs/huge.tif', big],
      ['manifest.json', 2],
    ]);
    // unzip -t reads every byte and checks every CRC, including the entry past 4 GiB.
    expect(unzipTest(file)).toContain('No errors detected');
  }, 600_000);
});
