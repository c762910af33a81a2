import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { crc32 } from 'node:zlib';
import { PartChecksum } from './part-checksum.js';

/** The CRC-32 module under archiver: what the ZIP writer checksums each entry's chunks with. */
const zipWriterCrc = createRequire(import.meta.url)('crc-32') as { buf(data: Uint8Array, seed?: number): number };

/** `length` bytes that are the same on every run. */
function bytes(length: number, seed: string): Buffer {
  const out = Buffer.alloc(length);
  for (let at = 0, block = 0; at < length; block++) at += createHash('sha256').update(`${seed}/${block}`).digest().copy(out, at);
  return out;
}

/** What S3 expects in x-amz-checksum-crc32 for these bytes. */
function expected(...pieces: Buffer[]): string {
  const value = Buffer.alloc(4);
  value.writeUInt32BE(crc32(Buffer.concat(pieces)));
  return value.toString('base64');
}

describe('PartChecksum', () => {
  it('is the CRC-32 of the bytes copied into the part, in order, whether or not the ZIP writer saw them', () => {
    const header = bytes(30, 'header');
    const entryChunks = [bytes(65_536, 'a'), bytes(65_536, 'b'), bytes(1_000, 'c')];
    for (const chunk of entryChunks) zipWriterCrc.buf(chunk);
    const unseen = bytes(70_000, 'unseen');
    const checksum = new PartChecksum();

    checksum.add(header, 0, header.length);
    for (const chunk of entryChunks) checksum.add(chunk, 0, chunk.length);
    checksum.add(unseen, 0, unseen.length);

    expect(checksum.take()).toBe(expected(header, ...entryChunks, unseen));
  });

  it('takes a whole chunk\'s CRC-32 from what the ZIP writer computed, without reading the chunk again', () => {
    const chunk = bytes(65_536, 'seen');
    const original = Buffer.from(chunk);
    zipWriterCrc.buf(chunk, 12_345);
    // Changed behind the ZIP writer's back (which nothing in a build does): only a checksum that did not read
    // the bytes again still describes the original ones.
    chunk.fill(0);
    const checksum = new PartChecksum();

    checksum.add(chunk, 0, chunk.length);

    expect(checksum.take()).toBe(expected(original));
  });

  it('reads the slices of a chunk split between two parts, and starts each part afresh', () => {
    const chunk = bytes(100_000, 'split');
    zipWriterCrc.buf(chunk);
    const checksum = new PartChecksum();

    checksum.add(chunk, 0, 40_000);
    const first = checksum.take();
    checksum.add(chunk, 40_000, 60_000);
    const second = checksum.take();

    expect([first, second]).toEqual([expected(chunk.subarray(0, 40_000)), expected(chunk.subarray(40_000))]);
    expect(new PartChecksum().take()).toBe(expected(Buffer.alloc(0)));
  });
});
