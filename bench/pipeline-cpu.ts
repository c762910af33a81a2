import type { S3Client } from '@aws-sdk/client-s3';
import { fork } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { chunksOf } from '../src/packaging/chunks.js';
import { PooledMultipartUpload } from '../src/packaging/multipart-upload.js';
import { OrderedFetcher, type RangeReader } from '../src/packaging/ordered-fetcher.js';
import { READ_AHEAD_SETTINGS } from '../src/packaging/read-ahead.js';
import type { PlannedEntry } from '../src/packaging/package-builder.js';
import { DigestStream, ZipArchiveWriter } from '../src/packaging/zip-writer.js';
import { measuredEnvironment } from './measure-process.js';
import { median } from './report.js';

const MiB = 1024 * 1024;
const OBJECT_BYTES = 32 * MiB;
/** What a socket hands over at a time. */
const NETWORK_CHUNK_BYTES = 64 * 1024;

export interface PipelineCpuResult {
  bytes: number;
  /** CPU seconds per GiB, medians of the runs. */
  packagingCpuPerGiB: number;
  /** The same with each part's CRC-32 computed again over its bytes, as the SDK did before part-checksum.ts. */
  partsReadAgainCpuPerGiB: number;
  uploadOnlyCpuPerGiB: number;
  /** One SHA-256 pass over the same bytes, alone: the contract asks for two (each entry's, the archive's). */
  sha256CpuPerGiB: number;
}

/**
 * Every object's bytes come from this many random bytes, repeated: a socket's data arrives from the kernel's
 * buffers, hot in cache, not from all over memory, and reading 32 MiB per object made the figures follow
 * whatever else used the machine's memory.
 */
const CONTENT_BYTES = 4 * MiB;

/** In-memory objects answered in fresh 64 KiB buffers, as a socket delivers them. */
function memoryReader(content: Buffer): RangeReader {
  return {
    async readRange(_bucket, _key, range) {
      let at = range.start;
      const body = new Readable({
        read() {
          if (at >= range.end) return void this.push(null);
          const length = Math.min(NETWORK_CHUNK_BYTES, range.end - at);
          const chunk = Buffer.allocUnsafeSlow(length);
          const from = at % CONTENT_BYTES;
          content.copy(chunk, 0, from, from + length);
          at += length;
          this.push(chunk);
        },
      });
      return { body, etag: 'listed', objectSize: OBJECT_BYTES, start: range.start };
    },
  };
}

/**
 * An S3 that takes every request at once, doing to a part what the SDK does before sending it and what costs
 * CPU there: a CRC-32 of the body when the part carries none (the SDK's default checksums). HTTP and signing
 * are left out: both pipelines pay them alike, and on loopback they are the noise this measurement avoids.
 * With `partsReadAgain`, the upload is told that the client adds no checksums, so it computes none itself and
 * every part is read again here, as the SDK did before the upload put them together from the ZIP's CRCs.
 */
function nullS3(partsReadAgain = false): S3Client {
  return {
    config: { requestChecksumCalculation: async () => (partsReadAgain ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED') },
    async send(command: { input: { Body?: Buffer; ChecksumCRC32?: string } }) {
      if (command.input.Body && !command.input.ChecksumCRC32) crc32(command.input.Body);
      await new Promise((resolve) => setImmediate(resolve));
      return { UploadId: 'null', ETag: '"null"' };
    },
  } as unknown as S3Client;
}

function entriesOf(bytes: number): PlannedEntry[] {
  return Array.from({ length: bytes / OBJECT_BYTES }, (_, index) => ({
    path: `inputs/${String(index).padStart(3, '0')}.tif`,
    bucket: 'assets',
    key: `${index}.tif`,
    size: OBJECT_BYTES,
    etag: 'listed',
    store: true,
  }));
}

/** In-memory reads cannot fail; a source failure would end the entry's stream with it, failing the run. */
function fetcherOf(content: Buffer, entries: PlannedEntry[]): OrderedFetcher {
  const settings = { concurrency: 16, bufferBytes: 12 * MiB, aheadBytes: 24 * MiB, readAhead: READ_AHEAD_SETTINGS, rangeBytes: 8 * MiB, rangesAhead: 64, attempts: 4, retryDelayMs: 100, throttledDelayMs: 1_000, idleTimeoutMs: 10_000 };
  return new OrderedFetcher(memoryReader(content), entries, settings, () => undefined);
}

function upload(body: Readable, partsReadAgain = false): Promise<void> {
  return new PooledMultipartUpload(nullS3(partsReadAgain), body, { bucket: 'packages', key: 'package.zip', contentType: 'application/zip', partSize: 8 * MiB, queueSize: 3 }).done();
}

/** The builder's pipeline: ordered reads, the ZIP writer (stored entries), the archive's digest, the upload. */
async function packageOnce(content: Buffer, bytes: number, partsReadAgain = false): Promise<void> {
  const entries = entriesOf(bytes);
  const sources = fetcherOf(content, entries);
  const writer = new ZipArchiveWriter(1);
  const archive = new DigestStream();
  writer.output.pipe(archive);
  const uploaded = upload(archive, partsReadAgain);
  for await (const { entry, source } of sources.streams()) await writer.addStream(entry.path, source, { store: true, date: new Date(0) });
  await writer.finalize();
  await uploaded;
  await sources.close();
}

/** The same reads straight into the same upload: no ZIP, no digests. */
async function uploadOnce(content: Buffer, bytes: number): Promise<void> {
  const sources = fetcherOf(content, entriesOf(bytes));
  async function* all() {
    for await (const { source } of sources.streams()) yield* chunksOf(source);
  }
  await upload(Readable.from(all(), { objectMode: false }));
  await sources.close();
}

/** After a full collection, so that no run pays for the garbage of the one before. */
async function cpuSeconds(run: () => Promise<void>): Promise<number> {
  (globalThis as { gc?: () => void }).gc?.();
  const before = process.cpuUsage();
  await run();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1e6;
}

/**
 * The packaging pipeline's own CPU without S3 or HTTP: on loopback their costs (and s3rver's share of the two
 * cores) move from run to run by more than the pipeline's differences. Measured in a child process of its own,
 * so that none of the bench's heap is collected with it, and with V8's default heap settings: with a worker's
 * (WORKER_NODE_OPTIONS), a process this small, with a live heap of 10 MiB instead of a worker's 40 to 50, runs a
 * full collection every 16 MiB or so of bytes and the figures follow the garbage collector, not the code.
 */
export async function benchPipelineCpu(bytes: number, runs: number): Promise<PipelineCpuResult> {
  const child = fork(fileURLToPath(import.meta.url), [String(bytes), String(runs)], {
    env: measuredEnvironment(),
    execArgv: [...process.execArgv, '--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise<PipelineCpuResult>((resolve, reject) => {
    child.once('message', (result: PipelineCpuResult) => resolve(result));
    child.once('exit', (code) => reject(new Error(`the pipeline CPU measurement exited with code ${code} before it answered`)));
  });
}

/** Runs alternate; medians are reported. */
async function measurePipelineCpu(bytes: number, runs: number, log: (line: string) => void): Promise<PipelineCpuResult> {
  const content = randomBytes(CONTENT_BYTES);
  const perGiB = (seconds: number) => seconds / (bytes / 1024 ** 3);
  await packageOnce(content, bytes);
  await uploadOnce(content, bytes);
  const packaging: number[] = [];
  const partsReadAgain: number[] = [];
  const uploadOnly: number[] = [];
  const sha256: number[] = [];
  for (let run = 0; run < runs; run++) {
    packaging.push(perGiB(await cpuSeconds(() => packageOnce(content, bytes))));
    partsReadAgain.push(perGiB(await cpuSeconds(() => packageOnce(content, bytes, true))));
    uploadOnly.push(perGiB(await cpuSeconds(() => uploadOnce(content, bytes))));
    sha256.push(
      perGiB(
        await cpuSeconds(async () => {
          const hash = createHash('sha256');
          for (let done = 0; done < bytes; done += NETWORK_CHUNK_BYTES) hash.update(content.subarray(done % CONTENT_BYTES, (done % CONTENT_BYTES) + NETWORK_CHUNK_BYTES));
          hash.digest();
        }),
      ),
    );
    log(
      `pipeline CPU, run ${run + 1}: packaging ${packaging[run].toFixed(2)} s/GiB, with parts read again ${partsReadAgain[run].toFixed(2)}, ` +
        `upload only ${uploadOnly[run].toFixed(2)}, one SHA-256 pass ${sha256[run].toFixed(2)}`,
    );
  }
  return {
    bytes,
    packagingCpuPerGiB: median(packaging),
    partsReadAgainCpuPerGiB: median(partsReadAgain),
    uploadOnlyCpuPerGiB: median(uploadOnly),
    sha256CpuPerGiB: median(sha256),
  };
}

export function pipelineCpuFigureLine(result: PipelineCpuResult): string {
  const { packagingCpuPerGiB: packaging, partsReadAgainCpuPerGiB: readAgain, uploadOnlyCpuPerGiB: uploadOnly, sha256CpuPerGiB: sha256 } = result;
  const rest = packaging - uploadOnly - 2 * sha256;
  return (
    `packaging pipeline CPU in process (no S3, no HTTP), ${result.bytes / 1024 ** 3} GiB of 32 MiB stored entries: ${packaging.toFixed(2)} s/GiB ` +
    `= ${(packaging / readAgain).toFixed(2)} x the same with each part's CRC-32 computed again (${readAgain.toFixed(2)} s, before part checksums came from the ZIP's); ` +
    `the same reads into the same upload (no ZIP, no digests; one CRC-32 pass, as packaging) ${uploadOnly.toFixed(2)} s/GiB; of the difference, two SHA-256 ` +
    `passes (the contract's) cost ${(2 * sha256).toFixed(2)} s measured alone, the rest (${rest.toFixed(2)} s) is the ZIP writer's streams, records and garbage [no target]`
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.send) {
  const [bytes, runs] = process.argv.slice(2).map(Number);
  const result = await measurePipelineCpu(bytes, runs, (line) => process.stderr.write(`[bench] ${line}\n`));
  process.send(result, () => process.exit(0));
}
