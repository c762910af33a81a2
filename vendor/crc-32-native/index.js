'use strict';
// Stands in for the `crc-32` package under archiver (crc32-stream, compress-commons; see package.json's
// overrides): the same signed 32-bit results from Node's native zlib.crc32, several times faster than the
// package's JavaScript tables, which made CRC-32 the largest CPU cost of storing large rasters.
// test/crc-32-native.test.ts compares it with the package it replaces.
const { crc32 } = require('node:zlib');
// zlib's crc32 answers 0 for an empty buffer whatever the seed (it sees a null pointer); the package answers
// the seed, so that an empty chunk in the middle of a stream leaves the running CRC as it was.
const crc = (bytes, seed) => (bytes.length === 0 ? (seed ?? 0) | 0 : crc32(bytes, (seed ?? 0) >>> 0) | 0);
const buf = (data, seed) => crc(data, seed);
const str = (text, seed) => crc(Buffer.from(String(text), 'utf8'), seed);
const bstr = (binary, seed) => crc(Buffer.from(String(binary), 'latin1'), seed);
module.exports = { version: '1.2.2-native', buf, str, bstr };
