import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { PackageBuilder, type BuildRequest, type PlannedEntry } from '../src/packaging/package-builder.js';
import { PackageSources } from '../src/packaging/package-sources.js';
import { PackageUploads } from '../src/packaging/package-uploads.js';
import { StorageRepository } from '../src/storage/storage.repository.js';
import { Fixtures, inspectZip, sha256, testConfig, uniqueId } from './support/harness.js';
import { ScriptedStorage } from './support/scripted-storage.js';
import { startS3Proxy } from './support/processes.js';

const MiB = 1024 * 1024;

/**
 * Sources read over several connections and written in order, against the real s3rver: what a user checks is
 * the ZIP itself (Python's zipfile), the manifest's checksums, and what is left in the bucket.
 */
describe('parallel reads of a build', () => {
  let fixtures: Fixtures;
  let storage: ScriptedStorage;
  let sut: PackageBuilder;
  let scratch: string;

  beforeAll(async () => {
    fixtures = await Fixtures.create();
    storage = new ScriptedStorage(fixtures.config);
    sut = new PackageBuilder(new PackageSources(storage, fixtures.config), new PackageUploads(storage));
    scratch = await mkdtemp(path.join(tmpdir(), 'parallel-reads-'));
  });

  // Each test's checks of what was read (everyReadAnsweredOrAborted, everyBodyClosed) are about its own reads,
  // not a previous test's.
  beforeEach(() => {
    storage.reset();
  });

  afterEach(() => {
    storage.script = undefined;
  });

  afterAll(async () => {
    storage.onModuleDestroy();
    await fixtures.close();
    await rm(scratch, { recursive: true, force: true });
  });

  /** Writes the files to S3 and plans them as PackagingService does: listed (with their ETags), in key order. */
  async function seed(files: Record<string, Buffer>): Promise<PlannedEntry[]> {
    const prefix = `${uniqueId('parallel')}/`;
    await fixtures.putAll(prefix, files);
    const entries: PlannedEntry[] = [];
    for await (const object of storage.listObjects({ bucket: 'test-assets', prefix })) {
      const name = object.key.slice(prefix.length);
      entries.push({ path: `inputs/${name}`, bucket: object.bucket, key: object.key, size: object.size, etag: object.etag, store: !name.endsWith('.json') });
    }
    return entries.sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  function request(entries: PlannedEntry[], overrides: Partial<BuildRequest> = {}): BuildRequest {
    return {
      destination: { bucket: 'test-packages', key: `parallel/${uniqueId('pkg')}.zip` },
      entries,
      manifest: { operation_id: 'parallel' },
      entryDate: new Date('2026-12-01T10:00:00Z'),
      deflateLevel: 1,
      storeManifest: false,
      stallTimeoutMs: 60_000,
      ...overrides,
    };
  }

  async function storedZip(key: string): Promise<{ file: string; bytes: Buffer }> {
    const object = await storage.client.send(new GetObjectCommand({ Bucket: 'test-packages', Key: key }));
    const bytes = Buffer.from(await object.Body!.transformToByteArray());
    const file = path.join(scratch, `${uniqueId('zip')}.zip`);
    await writeFile(file, bytes);
    return { file, bytes };
  }

  async function objectsUnder(prefix: string): Promise<string[]> {
    const listed = await storage.client.send(new ListObjectsV2Command({ Bucket: 'test-packages', Prefix: prefix }));
    return (listed.Contents ?? []).map((object) => object.Key!);
  }

  /** A raster of several ranges, a small one of two, tiny files, an empty one and a text file deflated. */
  function jobFiles(): Record<string, Buffer> {
    const files: Record<string, Buffer> = {
      'scene/B01.tif': randomBytes(20 * MiB + 1_234),
      'scene/B02.tif': randomBytes(9 * MiB),
      'empty.tif': Buffer.alloc(0),
      'stats.json': Buffer.from(JSON.stringify({ mean: 0.42 }).repeat(2_000)),
    };
    for (let i = 0; i < 24; i++) files[`tiles/${String(i).padStart(2, '0')}.png`] = randomBytes(1 + ((i * 7_919) % 60_000));
    return files;
  }

  it('asks S3 for no checksums when it reads, and reads from a store that sends the whole object\'s with every range (MinIO before 2023, Ceph RGW before 2025)', async () => {
    // Asked for them, S3 sends a checksum with each whole-object read (CRC64NVME by default since 2025), which
    // the SDK then computes in JavaScript on every byte; and a range it cannot check would fail the read.
    const files = { 'scene/B01.tif': randomBytes(20 * MiB + 1_234), 'small.tif': randomBytes(70_000) };
    const entries = await seed(files);
    // Each answer carries the CRC32 of the whole object: right for a whole-object read, wrong for a range.
    const crcOf = new Map(entries.map((entry) => {
      const crc = Buffer.alloc(4);
      crc.writeUInt32BE(crc32(files[entry.path.slice('inputs/'.length) as keyof typeof files]));
      return [entry.key, crc.toString('base64')];
    }));
    const proxy = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), {
      answerHeaders: (method, url, headers) => {
        const key = [...crcOf.keys()].find((candidate) => decodeURIComponent(url.split('?')[0]).endsWith(candidate));
        return method === 'GET' && key ? { ...headers, 'x-amz-checksum-crc32': crcOf.get(key) } : headers;
      },
    });
    const viaProxy = new StorageRepository(testConfig({ S3_ENDPOINT: `http://127.0.0.1:${proxy.port}` }));
    try {
      const builder = new PackageBuilder(new PackageSources(viaProxy, fixtures.config), new PackageUploads(storage));
      const build = request(entries);

      const built = await builder.build(build);

      const reads = proxy.requests.filter((r) => r.method === 'GET' && !r.url.includes('list-type'));
      expect(reads.length).toBe(4);
      expect(reads.filter((r) => r.headers['x-amz-checksum-mode'] !== undefined)).toEqual([]);
      const { file } = await storedZip(build.destination.key);
      expect(inspectZip(file).testzip).toBeNull();
      for (const entry of entries) {
        expect(built.entries.find((e) => e.path === entry.path)?.sha256).toBe(sha256(files[entry.path.slice('inputs/'.length) as keyof typeof files]));
      }
    } finally {
      viaProxy.onModuleDestroy();
      await proxy.close();
    }
  });

  it('writes every entry in order, byte for byte, when the ranges answer in reverse order; a rebuild writes the same bytes', async () => {
    const files = jobFiles();
    const entries = await seed(files);
    // Answers that arrive together are handed over last first.
    const held: Array<() => void> = [];
    const answered: number[] = [];
    let asked = 0;
    storage.script = async (_call, real) => {
      const order = asked++;
      const answer = await real();
      await new Promise<void>((resolve) => {
        held.push(resolve);
        if (held.length === 1) setTimeout(() => held.splice(0).reverse().forEach((release) => release()), 20);
      });
      answered.push(order);
      return answer;
    };
    const shuffled = request(entries);

    const built = await sut.build(shuffled);

    expect(answered).not.toEqual([...answered].sort((a, b) => a - b));
    const { file, bytes } = await storedZip(shuffled.destination.key);
    const zip = inspectZip(file);
    expect(zip.testzip).toBeNull();
    expect(zip.entries.map((entry) => entry.name)).toEqual([...entries.map((entry) => entry.path), 'manifest.json']);
    for (const entry of entries) {
      const content = files[entry.path.slice('inputs/'.length)];
      expect(zip.entries.find((e) => e.name === entry.path)?.sha256).toBe(sha256(content));
      expect(built.entries.find((e) => e.path === entry.path)).toMatchObject({ size: content.length, etag: entry.etag, sha256: sha256(content) });
    }
    expect(built.sha256).toBe(sha256(bytes));
    expect(storage.calls.filter((call) => call.key.endsWith('B01.tif')).map((call) => call.start)).toEqual([0, 8 * MiB, 16 * MiB]);

    // The same build read one object at a time, in order, writes the very same bytes.
    storage.script = undefined;
    const oneAtATime = new PackageBuilder(new PackageSources(storage, testConfig({ FETCH_CONCURRENCY: '1', FETCH_BUFFER_MIB: '8' })), new PackageUploads(storage));
    const rebuilt = await oneAtATime.build({ ...shuffled, destination: { bucket: 'test-packages', key: `parallel/${uniqueId('again')}.zip` } });
    expect(rebuilt.sha256).toBe(built.sha256);
  });

  it('reads again only the rest of a range whose answer breaks off, and the build succeeds', async () => {
    const big = randomBytes(20 * MiB);
    const entries = await seed({ 'big.tif': big, 'small.tif': randomBytes(1_000) });
    let broken = false;
    storage.script = async (call, real) => {
      const answer = await real();
      if (broken || call.start !== 8 * MiB) return answer;
      broken = true;
      return { ...answer, body: breakingAfter(answer.body, MiB) };
    };
    const build = request(entries);

    const built = await sut.build(build);

    const { file } = await storedZip(build.destination.key);
    expect(inspectZip(file).entries.find((entry) => entry.name === 'inputs/big.tif')?.sha256).toBe(sha256(big));
    expect(built.entries[0].sha256).toBe(sha256(big));
    const reads = storage.calls.filter((call) => call.key === entries[0].key);
    expect(reads).toHaveLength(4);
    const retry = reads[3];
    expect(retry.end).toBe(16 * MiB);
    expect(retry.start).toBeGreaterThan(8 * MiB);
    expect(retry.start).toBeLessThanOrEqual(9 * MiB);
  });

  it.each([
    ['with bytes of the same size', 20 * MiB],
    ['with fewer bytes', 5 * MiB],
  ])('fails as SOURCE_CHANGED, leaving nothing in the bucket, when a source is overwritten during the build %s', async (_how, newSize) => {
    const entries = await seed({ 'a.tif': randomBytes(100_000), 'big.tif': randomBytes(20 * MiB) });
    let overwritten = false;
    storage.script = async (call, real) => {
      if (call.key === entries[1].key && call.start === 8 * MiB && !overwritten) {
        overwritten = true;
        await storage.putObject('test-assets', call.key, randomBytes(newSize), 'image/tiff');
      }
      return real();
    };
    const build = request(entries);

    const failure = await sut.build(build).catch((error: unknown) => error);

    expect(failure).toMatchObject({ code: 'SOURCE_CHANGED', retriable: true });
    await expect(storage.client.send(new HeadObjectCommand({ Bucket: 'test-packages', Key: build.destination.key }))).rejects.toMatchObject({ name: 'NotFound' });
    expect(await objectsUnder(build.destination.key)).toEqual([]);
    expect(storage.everyReadAnsweredOrAborted).toBe(true);
    expect(storage.everyBodyClosed).toBe(true);
  });

  it('writes a package smaller than one part with a single PutObject, and a larger one as a multipart upload', async () => {
    const sent: string[] = [];
    const uploads = new StorageRepository(fixtures.config);
    uploads.client.middlewareStack.add(
      (next, context) => async (args) => {
        sent.push(context.commandName as string);
        return next(args);
      },
      { step: 'initialize', name: 'recordCommands' },
    );
    const builder = new PackageBuilder(new PackageSources(storage, fixtures.config), new PackageUploads(uploads));
    try {
      const small = request(await seed({ 'a.tif': randomBytes(300_000), 'b.json': Buffer.from('{}') }));
      await builder.build(small);

      expect(sent).toEqual(['PutObjectCommand']);
      const head = await storage.client.send(new HeadObjectCommand({ Bucket: 'test-packages', Key: small.destination.key }));
      expect(head.ContentType).toBe('application/zip');

      sent.length = 0;
      await builder.build(request(await seed({ 'large.tif': randomBytes(9 * MiB) })));

      expect(sent).toEqual(['CreateMultipartUploadCommand', 'UploadPartCommand', 'UploadPartCommand', 'CompleteMultipartUploadCommand']);
    } finally {
      uploads.onModuleDestroy();
    }
  });
});

/** The body's first `bytes`, then a connection reset, as a dropped connection would deliver it. */
function breakingAfter(body: Readable, bytes: number): Readable {
  async function* upTo(): AsyncGenerator<Buffer> {
    let passed = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      const part = chunk.subarray(0, bytes - passed);
      passed += part.length;
      yield part;
      if (passed >= bytes) break;
    }
    throw Object.assign(new Error('socket reset by peer'), { code: 'ECONNRESET' });
  }
  return Readable.from(upTo(), { objectMode: false });
}
