import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { StorageRepository } from '../src/storage/storage.repository.js';
import { PackageUploads } from '../src/packaging/package-uploads.js';
import { PackageBuilder, type BuildRequest, type PlannedEntry } from '../src/packaging/package-builder.js';
import { PackagingError } from '../src/packaging/packaging-error.js';
import { Fixtures, uniqueId } from './support/harness.js';

/**
 * Failures in the middle of a build, against the real s3rver. What S3 cannot be made to do here (drop a
 * stream half-way, stall for ever) comes from a source stream that does exactly that.
 */
describe('PackageBuilder when a build goes wrong', () => {
  let fixtures: Fixtures;
  let storage: StorageRepository;
  let sut: PackageBuilder;

  beforeAll(async () => {
    fixtures = await Fixtures.create();
    storage = fixtures.storage;
    sut = new PackageBuilder(storage, new PackageUploads(storage));
  });

  afterAll(async () => {
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

  /** Serves one key through a stream of our making; every other key from S3. */
  function replaceSource(key: string, make: () => Readable): () => void {
    const original = storage.openObject;
    storage.openObject = async (bucket, candidate, signal) => (candidate === key ? make() : original.call(storage, bucket, candidate, signal));
    return () => (storage.openObject = original);
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

  it('keeps the original cause when a source breaks mid-stream, and leaves no object behind', async () => {
    const entries = await seed({ 'a.tif': randomBytes(50_000), 'b.tif': randomBytes(3_000_000) });
    const restore = replaceSource(entries[1].key, () => {
      let sent = 0;
      return new Readable({
        read() {
          if (sent >= 1_000_000) return void this.destroy(Object.assign(new Error('socket reset by peer'), { code: 'ECONNRESET' }));
          sent += 100_000;
          this.push(randomBytes(100_000));
        },
      });
    });
    const build = request(entries);
    try {
      const failure = await sut.build(build).catch((error: unknown) => error);

      expect(failure).toBeInstanceOf(PackagingError);
      expect(failure).toMatchObject({ code: 'SOURCE_READ_FAILED', retriable: true });
      expect((failure as Error).message).toContain('socket reset by peer');
      await expectNoObject(build.destination.key);
    } finally {
      restore();
    }
  });

  it('fails a build that stops making progress instead of hanging', async () => {
    const entries = await seed({ 'a.tif': randomBytes(10_000), 'stuck.tif': randomBytes(10_000) });
    // A source that sends a little, then never sends again nor ends.
    const restore = replaceSource(entries[1].key, () => {
      let sent = false;
      return new Readable({
        read() {
          if (!sent) this.push(randomBytes(1_000));
          sent = true;
        },
      });
    });
    const build = request(entries, { stallTimeoutMs: 1_500 });
    try {
      const failure = await sut.build(build).catch((error: unknown) => error);

      expect(failure).toMatchObject({ code: 'STALLED', retriable: true });
      await expectNoObject(build.destination.key);
    } finally {
      restore();
    }
  });

  it('reports a source that is shorter than listed as changed', async () => {
    const entries = await seed({ 'a.tif': randomBytes(10_000) });
    entries[0].size = 20_000;

    const failure = await sut.build(request(entries)).catch((error: unknown) => error);

    expect(failure).toMatchObject({ code: 'SOURCE_CHANGED' });
  });

  it('stops when the build is interrupted from outside (shutdown)', async () => {
    const entries = await seed({ 'a.tif': randomBytes(10_000), 'slow.tif': randomBytes(10_000) });
    const restore = replaceSource(entries[1].key, () => new Readable({ read() {} }));
    const controller = new AbortController();
    try {
      const building = sut.build(request(entries, { signal: controller.signal }));
      setTimeout(() => controller.abort(), 200);
      await expect(building).rejects.toMatchObject({ code: 'INTERRUPTED' });
    } finally {
      restore();
    }
  });
});
