import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { StorageRepository } from '../src/storage/storage.repository.js';
import { PackageSources } from '../src/packaging/package-sources.js';
import { PackageUploads } from '../src/packaging/package-uploads.js';
import { PackageBuilder, type BuildRequest, type PlannedEntry } from '../src/packaging/package-builder.js';
import { PackagingError } from '../src/packaging/packaging-error.js';
import { Fixtures, testConfig, uniqueId } from './support/harness.js';
import { startS3Proxy } from './support/processes.js';
import { ScriptedStorage } from './support/scripted-storage.js';

const MiB = 1024 * 1024;

/**
 * Failures in the middle of a build, against the real s3rver. What S3 cannot be made to do here (drop a
 * stream half-way, stall for ever) comes from a source stream that does exactly that.
 */
describe('PackageBuilder when a build goes wrong', () => {
  let fixtures: Fixtures;
  let storage: ScriptedStorage;
  let sut: PackageBuilder;

  beforeAll(async () => {
    fixtures = await Fixtures.create();
    storage = new ScriptedStorage(fixtures.config);
    sut = new PackageBuilder(new PackageSources(storage, fixtures.config), new PackageUploads(storage));
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
  });

  async function seed(files: Record<string, Buffer>): Promise<PlannedEntry[]> {
    const prefix = `${uniqueId('builder')}/`;
    await fixtures.putAll(prefix, files);
    return Object.entries(files).map(([name, body]) => ({
      path: `inputs/${name}`,
      bucket: 'test-assets',
      key: `${prefix}${name}`,
      size: body.length,
      etag: '',
      store: true,
    }));
  }

  function request(entries: PlannedEntry[], overrides: Partial<BuildRequest> = {}): BuildRequest {
    return {
      destination: { bucket: 'test-packages', key: `failures/${uniqueId('pkg')}.zip` },
      entries,
      manifest: { operation_id: 'test' },
      entryDate: new Date(),
      deflateLevel: 1,
      storeManifest: false,
      stallTimeoutMs: 60_000,
      ...overrides,
    };
  }

  async function expectNoObject(key: string): Promise<void> {
    await expect(storage.client.send(new HeadObjectCommand({ Bucket: 'test-packages', Key: key }))).rejects.toMatchObject({ name: 'NotFound' });
  }

  /** Answers every read of one key with a stream of our making; every other key from S3. */
  function replaceSource(key: string, make: () => Readable): void {
    storage.script = async (call, real) => (call.key === key ? { body: make(), etag: '', objectSize: undefined, start: call.start } : real());
  }

  it('completes and reports size and SHA-256 when nothing goes wrong', async () => {
    const entries = await seed({ 'a.tif': randomBytes(50_000), 'b.tif': randomBytes(70_000) });
    const build = request(entries);

    const built = await sut.build(build);

    expect(built.entries.map((e) => e.size)).toEqual([50_000, 70_000]);
    const head = await storage.client.send(new HeadObjectCommand({ Bucket: 'test-packages', Key: build.destination.key }));
    expect(head.ContentLength).toBe(built.sizeBytes);
    expect(head.ContentType).toBe('application/zip');
  });

  it('sends every part with the CRC-32 S3 checks on it, read from S3 and stored or deflated', async () => {
    // The proxy refuses, as S3 does, a part whose x-amz-checksum-crc32 is not its bytes' (s3rver checks none).
    // Stored entries' CRCs come from the ZIP writer's, and parts begin and end inside their chunks.
    const proxy = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), { verifyCrc32: true });
    const viaProxy = new StorageRepository(testConfig({ S3_ENDPOINT: `http://127.0.0.1:${proxy.port}` }));
    try {
      const files = { 'B04.tif': randomBytes(9 * MiB + 4_321), 'B08.tif': randomBytes(7 * MiB + 99), 'scene.json': Buffer.from('{"cloud_cover": 3.5}\n'.repeat(50_000)) };
      const entries = (await seed(files)).map((entry) => ({ ...entry, store: entry.path.endsWith('.tif') }));
      const builder = new PackageBuilder(new PackageSources(viaProxy, fixtures.config), new PackageUploads(viaProxy));
      const build = request(entries);

      const built = await builder.build(build);

      const parts = proxy.requests.filter((sent) => sent.method === 'PUT' && sent.url.includes('partNumber='));
      expect(parts.length).toBeGreaterThanOrEqual(2);
      for (const part of parts) expect(part.headers['x-amz-checksum-crc32']).toBeDefined();
      const object = await storage.client.send(new GetObjectCommand({ Bucket: 'test-packages', Key: build.destination.key }));
      const zip = Buffer.from(await object.Body!.transformToByteArray());
      expect(createHash('sha256').update(zip).digest('hex')).toBe(built.sha256);
      expect(built.entries.map((entry) => entry.sha256)).toEqual(Object.values(files).map((body) => createHash('sha256').update(body).digest('hex')));
    } finally {
      viaProxy.onModuleDestroy();
      await proxy.close();
    }
  }, 60_000);

  it('fails as UPLOAD_FAILED with S3\'s own answer when S3 refuses a part, not as the teardown of the streams behind it', async () => {
    // S3 refuses the first part as it refuses a body that does not match its checksum.
    const proxy = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), {
      answer: (method, url) =>
        method === 'PUT' && url.includes('partNumber=1&')
          ? { status: 400, headers: { 'content-type': 'application/xml' }, body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>BadDigest</Code><Message>The Content-MD5 you specified did not match what we received.</Message></Error>' }
          : undefined,
    });
    const viaProxy = new StorageRepository(testConfig({ S3_ENDPOINT: `http://127.0.0.1:${proxy.port}` }));
    try {
      const entries = await seed({ 'B04.tif': randomBytes(12 * MiB), 'B08.tif': randomBytes(12 * MiB) });
      const builder = new PackageBuilder(new PackageSources(viaProxy, fixtures.config), new PackageUploads(viaProxy));
      const build = request(entries);

      await expect(builder.build(build)).rejects.toMatchObject({ code: 'UPLOAD_FAILED', message: expect.stringContaining('Content-MD5') });

      await expectNoObject(build.destination.key);
    } finally {
      viaProxy.onModuleDestroy();
      await proxy.close();
    }
  }, 60_000);

  it('keeps the original cause when a source breaks on every attempt, and leaves no object behind', async () => {
    const entries = await seed({ 'a.tif': randomBytes(50_000), 'b.tif': randomBytes(3_000_000) });
    replaceSource(entries[1].key, () => {
      let sent = 0;
      return new Readable({
        read() {
          if (sent >= 100_000) return void this.destroy(Object.assign(new Error('socket reset by peer'), { code: 'ECONNRESET' }));
          sent += 10_000;
          this.push(randomBytes(10_000));
        },
      });
    });
    const build = request(entries);

    const failure = await sut.build(build).catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(PackagingError);
    expect(failure).toMatchObject({ code: 'SOURCE_READ_FAILED', retriable: true });
    expect((failure as Error).message).toContain('socket reset by peer');
    // Four attempts, each asking only for what the range still lacked.
    const starts = storage.calls.filter((call) => call.key === entries[1].key).map((call) => call.start);
    expect(starts).toHaveLength(4);
    expect(starts[0]).toBe(0);
    starts.slice(1).forEach((start, i) => expect(start).toBeGreaterThan(starts[i]));
    await expectNoObject(build.destination.key);
  });

  it('fails a build whose source stops sending, after reading it again, instead of hanging', async () => {
    const entries = await seed({ 'a.tif': randomBytes(10_000), 'stuck.tif': randomBytes(10_000) });
    // A source that sends a little, then never sends again nor ends.
    replaceSource(entries[1].key, () => {
      let sent = false;
      return new Readable({
        read() {
          if (!sent) this.push(randomBytes(1_000));
          sent = true;
        },
      });
    });
    const build = request(entries, { stallTimeoutMs: 1_500 });

    const failure = await sut.build(build).catch((error: unknown) => error);

    expect(failure).toMatchObject({ code: 'STALLED', retriable: true });
    expect(storage.calls.filter((call) => call.key === entries[1].key).length).toBeGreaterThan(1);
    await expectNoObject(build.destination.key);
    expect(storage.everyBodyClosed).toBe(true);
  });

  it('fails a build whose upload stops taking bytes (the watchdog), and leaves no read behind', async () => {
    // An S3 endpoint that accepts connections and never answers: the package's PutObject hangs.
    const sockets: Socket[] = [];
    const blackHole: Server = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    const port = (blackHole.address() as { port: number }).port;
    const unanswering = new StorageRepository(testConfig({ S3_ENDPOINT: `http://127.0.0.1:${port}` }));
    const builder = new PackageBuilder(new PackageSources(storage, fixtures.config), new PackageUploads(unanswering));
    const entries = await seed({ 'a.tif': randomBytes(200_000), 'b.tif': randomBytes(300_000) });
    try {
      const failure = await builder.build(request(entries, { stallTimeoutMs: 1_500 })).catch((error: unknown) => error);

      expect(failure).toMatchObject({ code: 'STALLED', message: 'no progress for 1500 ms', retriable: true });
      expect(storage.everyReadAnsweredOrAborted).toBe(true);
      expect(storage.everyBodyClosed).toBe(true);
    } finally {
      unanswering.onModuleDestroy();
      sockets.forEach((socket) => socket.destroy());
      await new Promise((resolve) => blackHole.close(resolve));
    }
  });

  it('keeps within its upload buffer: at most as many parts in flight as UPLOAD_BUFFER_MIB holds', async () => {
    // Every UploadPart takes a second, long enough for the builder to fill every part the buffer allows (8 MiB
    // each) even on a busy machine, so that they are all in flight at once.
    const watched = new StorageRepository(fixtures.config);
    let inFlight = 0;
    let mostInFlight = 0;
    watched.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'UploadPartCommand') return next(args);
        mostInFlight = Math.max(mostInFlight, ++inFlight);
        try {
          await new Promise((resolve) => setTimeout(resolve, 1_000));
          return await next(args);
        } finally {
          inFlight--;
        }
      },
      { step: 'initialize', name: 'watchParts' },
    );
    const builder = new PackageBuilder(new PackageSources(storage, fixtures.config), new PackageUploads(watched));
    // Six 8 MiB parts.
    const entries = await seed({ 'a.tif': randomBytes(24 * 1024 * 1024), 'b.tif': randomBytes(24 * 1024 * 1024) });
    try {
      const byBudget: Record<string, number> = {};
      for (const mib of [16, 32]) {
        mostInFlight = 0;
        const built = await builder.build(request(entries, { uploadBufferBytes: mib * 1024 * 1024 }));
        expect(built.partSize).toBe(8 * 1024 * 1024);
        byBudget[mib] = mostInFlight;
      }

      // 16 MiB: two 8 MiB part buffers; 32 MiB (the default): four.
      expect(byBudget).toEqual({ 16: 2, 32: 4 });
    } finally {
      watched.onModuleDestroy();
    }
  }, 60_000);

  it('waits out a CompleteMultipartUpload slower than the stall timeout: S3 assembling the object is not a stall', async () => {
    const slowComplete = new StorageRepository(fixtures.config);
    slowComplete.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'CompleteMultipartUploadCommand') await new Promise((resolve) => setTimeout(resolve, 3_000));
        return next(args);
      },
      { step: 'initialize', name: 'slowComplete' },
    );
    const builder = new PackageBuilder(new PackageSources(storage, fixtures.config), new PackageUploads(slowComplete));
    // More than one 8 MiB part: a multipart upload, which ends with CompleteMultipartUpload.
    const entries = await seed({ 'a.tif': randomBytes(6 * 1024 * 1024), 'b.tif': randomBytes(6 * 1024 * 1024) });
    const build = request(entries, { stallTimeoutMs: 1_500 });
    try {
      const built = await builder.build(build);

      const stored = await storage.client.send(new HeadObjectCommand({ Bucket: 'test-packages', Key: build.destination.key }));
      expect(stored.ContentLength).toBe(built.sizeBytes);
      expect(built.partSize).toBeLessThan(built.sizeBytes);
    } finally {
      slowComplete.onModuleDestroy();
    }
  });

  it('reports a source that is shorter than listed as changed', async () => {
    const entries = await seed({ 'a.tif': randomBytes(10_000) });
    entries[0].size = 20_000;

    const failure = await sut.build(request(entries)).catch((error: unknown) => error);

    expect(failure).toMatchObject({ code: 'SOURCE_CHANGED' });
  });

  it('stops when the build is interrupted from outside (shutdown), leaving no read open', async () => {
    const entries = await seed({ 'a.tif': randomBytes(10_000), 'slow.tif': randomBytes(10_000), 'c.tif': randomBytes(10_000) });
    replaceSource(entries[1].key, () => new Readable({ read() {} }));
    const controller = new AbortController();

    const building = sut.build(request(entries, { signal: controller.signal }));
    setTimeout(() => controller.abort(), 200);

    await expect(building).rejects.toMatchObject({ code: 'INTERRUPTED' });
    expect(storage.everyReadAnsweredOrAborted).toBe(true);
    expect(storage.everyBodyClosed).toBe(true);
  });
});
