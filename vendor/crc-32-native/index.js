'use strict';
// Stands in for the `crc-32` package under archiver (crc32-stream, compress-commons; see package.json's
// overrides): the same signed 32-bit results from Node's native zlib.crc32, several times faster than the
// package's JavaScript tables, which made CRC-32 the largest CPU cost of storing large rasters.
// test/crc-32-native.test.ts compares it with the package it replaces.
//
// Beyond the package's API it remembers, per chunk, the CRC-32 that buf() computed of that chunk alone, and
// offers combine(), so that the upload's per-part CRC-32 (the checksum S3 checks on every part) is put together
// from the CRCs the ZIP writer already computed for a stored entry's bytes instead of reading them again
// (src/packaging/part-checksum.ts). buf() itself never reads what it remembered: its results depend on the
// bytes alone, as the package's do.
const { crc32 } = require('node:zlib');

/** A running CRC passed back in as a seed: the package takes any number (or nothing: 0) as a signed int. */
const seedOf = (seed) => (typeof seed === 'number' ? seed >>> 0 : 0);
// zlib's crc32 answers 0 for an empty buffer whatever the seed (it sees a null pointer); the package answers
// the seed, so that an empty chunk in the middle of a stream leaves the running CRC as it was.
const crc = (bytes, seed) => (bytes.length === 0 ? seedOf(seed) | 0 : crc32(bytes, seedOf(seed)) | 0);

/** Chunk -> the CRC-32 of its bytes alone (unsigned), for the chunks buf() has seen. */
const seen = new WeakMap();

const buf = (data, seed) => {
  if (data.length === 0) return seedOf(seed) | 0;
  const own = crc32(data);
  seen.set(data, own);
  return combine(seedOf(seed), own, data.length) | 0;
};
const str = (text, seed) => crc(Buffer.from(String(text), 'utf8'), seed);
const bstr = (binary, seed) => crc(Buffer.from(String(binary), 'latin1'), seed);

/** The CRC-32 (unsigned) that buf() computed of this very chunk, if it has seen it. */
const remembered = (data) => seen.get(data);

// crc32_combine as zlib 1.2.12+ computes it: the CRC of A followed by B from the CRCs of A and B and B's
// length, by multiplying A's CRC by x^(8 * length of B) modulo the CRC polynomial (reflected, 0xEDB88320).
const POLY = 0xedb88320;

/** a * b modulo the polynomial, both reflected. */
function multiplyModP(a, b) {
  let m = 0x80000000;
  let product = 0;
  for (;;) {
    if (a & m) {
      product ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return product >>> 0;
}

/** x^(2^n) modulo the polynomial, n = 0..31. */
const X_TO_TWO_TO_THE = new Uint32Array(32);
X_TO_TWO_TO_THE[0] = 0x40000000; // x^1
for (let n = 1; n < 32; n++) X_TO_TWO_TO_THE[n] = multiplyModP(X_TO_TWO_TO_THE[n - 1], X_TO_TWO_TO_THE[n - 1]);

/**
 * x^(8 * length) modulo the polynomial. Most chunks come in a few sizes (a socket's 64 KiB reads, a stream's
 * high-water mark), so recent lengths are kept; the cache starts over when full rather than keeping the first
 * lengths it saw. A miss costs about 2 microseconds.
 */
const shiftByLength = new Map();
function shiftFor(length) {
  let shift = shiftByLength.get(length);
  if (shift === undefined) {
    shift = 0x80000000; // x^0
    // 8 * length, as bits of the exponent, from bit 3 up: the table's index k stands for x^(2^k).
    for (let n = length, k = 3; n > 0; n = Math.floor(n / 2), k++) {
      if (n % 2 === 1) shift = multiplyModP(X_TO_TWO_TO_THE[k & 31], shift);
    }
    if (shiftByLength.size >= 256) shiftByLength.clear();
    shiftByLength.set(length, shift);
  }
  return shift;
}

/** The CRC-32 (unsigned) of A followed by B, given the CRC-32 of A, that of B and B's length in bytes. */
const combine = (crcA, crcB, lengthOfB) => (multiplyModP(shiftFor(lengthOfB), crcA >>> 0) ^ (crcB >>> 0)) >>> 0;

module.exports = { version: '1.2.2-native', buf, str, bstr, remembered, combine };
