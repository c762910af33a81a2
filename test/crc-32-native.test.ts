import { randomBytes, randomInt } from 'node:crypto';
import { createRequire } from 'node:module';
import { crc32 } from 'node:zlib';

// Both are CommonJS: the stand-in (what archiver loads as `crc-32`) and the original package, installed
// under another name for this comparison only.
const require = createRequire(import.meta.url);
type Crc32 = { buf(data: Uint8Array, seed?: number): number; str(text: string, seed?: number): number; bstr(text: string, seed?: number): number };
const native = require('crc-32') as Crc32 & { version: string; remembered(data: Uint8Array): number | undefined; combine(a: number, b: number, lengthOfB: number): number };
const reference = require('crc-32-reference') as Crc32;

describe('the native CRC-32 stand-in, against the crc-32 package it replaces', () => {
  it('is the stand-in that archiver loads', () => {
    expect(native.version).toMatch(/native/);
  });

  it('gives the same buf() results on random buffers of every size, with and without a seed', () => {
    for (let round = 0; round < 200; round++) {
      const data = randomBytes(round < 20 ? round : randomInt(1, 256 * 1024));
      const seed = randomInt(-(2 ** 31), 2 ** 31);
      expect(native.buf(data)).toBe(reference.buf(data));
      expect(native.buf(data, seed)).toBe(reference.buf(data, seed));
    }
  });

  it('chains as the package does: the CRC of a whole equals the CRC of its parts fed one after another', () => {
    const data = randomBytes(1024 * 1024 + 17);
    let nativeRunning = 0;
    let referenceRunning = 0;
    for (let offset = 0; offset < data.length; ) {
      const end = Math.min(data.length, offset + randomInt(1, 70_000));
      nativeRunning = native.buf(data.subarray(offset, end), nativeRunning);
      referenceRunning = reference.buf(data.subarray(offset, end), referenceRunning);
      offset = end;
    }
    expect(nativeRunning).toBe(referenceRunning);
    expect(nativeRunning).toBe(reference.buf(data));
  });

  it('remembers what buf() computed of each chunk alone, and combines two CRCs as zlib\'s crc32_combine does', () => {
    for (let round = 0; round < 200; round++) {
      const [a, b] = [randomBytes(randomInt(0, 5000)), randomBytes(round < 10 ? round : randomInt(1, 300_000))];
      expect(native.combine(crc32(a), crc32(b), b.length)).toBe(crc32(Buffer.concat([a, b])));
      native.buf(b, randomInt(-(2 ** 31), 2 ** 31));
      if (b.length > 0) expect(native.remembered(b)).toBe(crc32(b));
    }
    // Lengths past 2^32 bits, as a multi-GB entry's: combining is associative there too.
    const [x, y, z] = [0x1234_5678, 0x9abc_def0, 0x0fed_cba9];
    const [lengthOfY, lengthOfZ] = [3 * 2 ** 31 + 5, 2 ** 33 + 1];
    expect(native.combine(native.combine(x, y, lengthOfY), z, lengthOfZ)).toBe(native.combine(x, native.combine(y, z, lengthOfZ), lengthOfY + lengthOfZ));
    // A view of the same bytes is another chunk: nothing is remembered for it.
    const chunk = randomBytes(1000);
    native.buf(chunk);
    expect(native.remembered(chunk.subarray(0, 500))).toBeUndefined();
  });

  it('gives the same str() and bstr() results for text of every kind', () => {
    const texts = ['', 'a', 'inputs/scene/B04.tif', 'ümlaut/日本/数据.zip', '🙂🚀 emoji', randomBytes(5000).toString('latin1'), randomBytes(3000).toString('base64')];
    for (const text of texts) {
      expect(native.str(text)).toBe(reference.str(text));
      expect(native.str(text, 12345)).toBe(reference.str(text, 12345));
      expect(native.bstr(text)).toBe(reference.bstr(text));
    }
  });
});
