import { createRequire } from 'node:module';
import { crc32 } from 'node:zlib';

/** What the CRC-32 module under archiver (vendor/crc-32-native) adds to the package's API. */
interface RememberedCrc32 {
  /** The CRC-32 (unsigned) it computed of this very chunk, while the ZIP writer checksummed an entry. */
  remembered(chunk: Uint8Array): number | undefined;
  /** The CRC-32 of A followed by B, from A's, B's and B's length. */
  combine(crcA: number, crcB: number, lengthOfB: number): number;
}

// Should `crc-32` ever resolve to the npm package again (it remembers nothing), parts are still checksummed,
// only by reading them.
const underArchiver = createRequire(import.meta.url)('crc-32') as Partial<RememberedCrc32>;

/**
 * The CRC-32 of one upload part, the checksum S3 verifies on every part (`x-amz-checksum-crc32`), built as
 * bytes are copied into the part. A stored entry's chunks reach the upload as the very buffers the ZIP writer
 * computed its CRC-32 over, so for those the CRC is combined from what was computed then instead of being
 * computed again; anything else (ZIP headers, deflated bytes, a chunk split across two parts) is read here.
 * Without this the SDK reads every part once more to compute the same checksum. A wrong value cannot pass
 * unnoticed: S3 refuses a part whose bytes do not match it.
 */
export class PartChecksum {
  private crc = 0;

  /** Adds `length` bytes of `chunk` from `offset`: the bytes just copied into the part. */
  add(chunk: Buffer, offset: number, length: number): void {
    if (length === 0) return;
    const known = offset === 0 && length === chunk.length ? underArchiver.remembered?.(chunk) : undefined;
    this.crc = known !== undefined ? underArchiver.combine!(this.crc, known, length) : crc32(chunk.subarray(offset, offset + length), this.crc);
  }

  /** The part's checksum as S3 takes it (base64 of the big-endian CRC), and a fresh start for the next part. */
  take(): string {
    const value = Buffer.alloc(4);
    value.writeUInt32BE(this.crc >>> 0);
    this.crc = 0;
    return value.toString('base64');
  }
}
