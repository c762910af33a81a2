'use strict';
// Drop-in for the `crc-32` package (used by archiver's crc32-stream and compress-commons) on Node's native
// zlib.crc32: same signed 32-bit results, several times faster than the JavaScript tables.
const { crc32 } = require('node:zlib');
const buf = (data, seed) => crc32(data, (seed ?? 0) >>> 0) | 0;
const str = (text, seed) => crc32(Buffer.from(String(text), 'utf8'), (seed ?? 0) >>> 0) | 0;
const bstr = (binary, seed) => crc32(Buffer.from(String(binary), 'latin1'), (seed ?? 0) >>> 0) | 0;
module.exports = { version: '1.2.2-native', buf, str, bstr };
