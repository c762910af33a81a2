import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { PooledMultipartUpload, type MultipartUploadOptions } from '../src/packaging/multipart-upload.js';
import { DigestStream, ZipArchiveWriter } from '../src/packaging/zip-writer.js';
import { MetricsService } from '../src/platform/metrics/metrics.service.js';
import { StorageRepository } from '../src/storage/storage.repository.js';
import { testConfig, uniqueId } from './support/harness.js';
import { startRelay, startS3Proxy } from './support/processes.js';

const MiB = 1024 * 1024;
const BUCKET = 'test-packages';

/** The bytes as a stream of uneven chunks, as sockets and archiver deliver them. */
function unevenStream(bytes: Buffer): Readable {
  const sizes = [1, 65_536, 7, 1 * MiB + 3, 300_000, 5 * MiB - 1];
  const chunks: Buffer[] = [];
  for (let offset = 0, i = 0; offset < bytes.length; i++) {
    const size = sizes[i % sizes.length];
    chunks.push(bytes.subarray(offset, offset + size));
    offset += size;
  }
  return Readable.from(chunks, { objectMode: false });
}

/** The upload through the real S3 client (s3rver), as packaging uses it. */
describe('PooledMultipartUpload', () => {
  let storage: StorageRepository;

  beforeAll(() => {
    storage = new StorageRepository(testConfig());
  });

  afterAll(() => {
    storage.onModuleDestroy();
  });

  const startUpload = (bucket: string, key: string, body: Readable, options: Omit<MultipartUploadOptions, 'bucket' | 'key'>) =>
    new PooledMultipartUpload(storage.client, body, { bucket, key, ...options });

  async function stored(key: string): Promise<{ sha256: string; etag: string; contentType?: string }> {
    const head = await storage.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    const object = await storage.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    const body = Buffer.from(await object.Body!.transformToByteArray());
    return { sha256: createHash('sha256').update(body).digest('hex'), etag: head.ETag!, contentType: head.ContentType };
  }

  async function exists(key: string): Promise<boolean> {
    return storage.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })).then(
      () => true,
      () => false,
    );
  }

  it('writes a stream of any chunking as parts of exactly partSize, reusing at most queueSize + 1 buffers', async () => {
    const bytes = randomBytes(23 * MiB + 12_345);
    const key = `${uniqueId('multipart')}.bin`;
    let acknowledged = 0;
    const upload = startUpload(BUCKET, key, unevenStream(bytes), {
      partSize: 5 * MiB,
      queueSize: 2,
      contentType: 'application/zip',
      onPartUploaded: () => acknowledged++,
    });

    await upload.done();

    const object = await stored(key);
    expect(object.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(object.contentType).toBe('application/zip');
    // 4 full parts of 5 MiB and the rest.
    expect(acknowledged).toBe(5);
    expect(upload.buffersAllocated).toBe(3);
  });

  it('sends its parts over kept-alive connections, not one new connection per part', async () => {
    // The SDK sends a body of 2 MiB or more with "Expect: 100-continue", and then on a connection of its own,
    // opened for that request and closed after it: on AWS, a TCP and TLS handshake and a round trip per part.
    const relay = await startRelay(Number(new URL(process.env.S3_ENDPOINT!).port));
    const viaRelay = new StorageRepository(testConfig({ S3_ENDPOINT: `http://127.0.0.1:${relay.port}` }));
    try {
      const bytes = randomBytes(12 * 5 * MiB);
      const key = `${uniqueId('multipart')}.bin`;
      const upload = new PooledMultipartUpload(viaRelay.client, unevenStream(bytes), { bucket: BUCKET, key, partSize: 5 * MiB, queueSize: 2, contentType: 'application/zip' });

      await upload.done();

      expect((await stored(key)).sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
      // 12 parts, at most 3 at a time (queueSize + 1 buffers), plus the requests that create and complete it.
      expect(relay.connections).toBeLessThanOrEqual(4);
    } finally {
      viaRelay.onModuleDestroy();
      await relay.cut();
    }
  });

  const slowDown = { status: 503, headers: { 'content-type': 'application/xml' }, body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>' };

  it.each([
    ['an upload part', 'UploadPart', 3 * 5 * MiB + 1_000, (method: string, url: string) => method === 'PUT' && url.includes('partNumber=2&')],
    ['CreateMultipartUpload', 'CreateMultipartUpload', 3 * 5 * MiB + 1_000, (method: string, url: string) => method === 'POST' && url.includes('?uploads')],
    ['CompleteMultipartUpload', 'CompleteMultipartUpload', 3 * 5 * MiB + 1_000, (method: string, url: string) => method === 'POST' && url.includes('uploadId=')],
    ['the single PutObject', 'PutObject', 100_000, (method: string, url: string) => method === 'PUT' && !url.includes('uploadId=')],
  ])('sends %s again when S3 throttles it past the SDK\'s own tries, and the object is whole', async (_request, operation, size, matches) => {
    // The first four sends are answered 503 SlowDown: the SDK's three tries, and the first of ours.
    let throttled = 0;
    const proxy = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), {
      answer: (method, url) => (matches(method, url) && throttled++ < 4 ? slowDown : undefined),
    });
    const metrics = new MetricsService();
    const viaProxy = new StorageRepository(testConfig({ S3_ENDPOINT: `http://127.0.0.1:${proxy.port}` }), metrics);
    try {
      const bytes = randomBytes(size);
      const key = `${uniqueId('multipart')}.bin`;
      const upload = new PooledMultipartUpload(viaProxy.client, unevenStream(bytes), { bucket: BUCKET, key, partSize: 5 * MiB, queueSize: 2, contentType: 'application/zip' });

      await upload.done();

      expect(throttled).toBeGreaterThanOrEqual(5);
      expect((await stored(key)).sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
      // Every try counts, the SDK's own included: what an operator watching for throttling sees.
      const counted = (await metrics.s3Requests.get()).values.filter((value) => value.labels.operation === operation);
      expect(counted.find((value) => value.labels.status === '503')?.value).toBe(4);
      expect(counted.find((value) => value.labels.status === '200')?.value).toBeGreaterThanOrEqual(1);
    } finally {
      viaProxy.onModuleDestroy();
      await proxy.close();
    }
  }, 60_000);

  it('a completion S3 carried out but whose answer was lost is done, though S3 no longer knows the upload when it is sent again', async () => {
    let lost = 0;
    const proxy = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), {
      swallow: (method, url) => method === 'POST' && url.includes('uploadId=') && lost++ === 0,
    });
    const viaProxy = new StorageRepository(testConfig({ S3_ENDPOINT: `http://127.0.0.1:${proxy.port}` }));
    try {
      const bytes = randomBytes(2 * 5 * MiB + 1_000);
      const key = `${uniqueId('multipart')}.bin`;
      const upload = new PooledMultipartUpload(viaProxy.client, unevenStream(bytes), { bucket: BUCKET, key, partSize: 5 * MiB, queueSize: 2, contentType: 'application/zip' });

      await upload.done();

      // Sent again (AWS answers NoSuchUpload, s3rver 500); the object at the key is the upload's.
      expect(lost).toBeGreaterThanOrEqual(2);
      expect((await stored(key)).sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    } finally {
      viaProxy.onModuleDestroy();
      await proxy.close();
    }
  }, 60_000);

  it.each([
    ['refused (400 InvalidPart) with nothing at the key', false, { status: 400, headers: { 'content-type': 'application/xml' }, body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidPart</Code><Message>One or more of the specified parts could not be found.</Message></Error>' }],
    ['failing (500) with another object at the key', true, { status: 500, headers: { 'content-type': 'application/xml' }, body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>' }],
  ])('a completion %s fails the upload: only the bytes it sent count as done', async (_case, objectThere, refusal) => {
    const proxy = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), {
      answer: (method, url) => (method === 'POST' && url.includes('uploadId=') ? refusal : undefined),
    });
    const viaProxy = new StorageRepository(testConfig({ S3_ENDPOINT: `http://127.0.0.1:${proxy.port}` }));
    const key = `${uniqueId('multipart')}.bin`;
    const other = randomBytes(2 * 5 * MiB);
    if (objectThere) await storage.putObject(BUCKET, key, other, 'application/zip');
    try {
      const upload = new PooledMultipartUpload(viaProxy.client, unevenStream(randomBytes(2 * 5 * MiB + 1_000)), { bucket: BUCKET, key, partSize: 5 * MiB, queueSize: 2, contentType: 'application/zip' });

      await expect(upload.done()).rejects.toMatchObject({ $metadata: { httpStatusCode: refusal.status } });

      if (objectThere) expect((await stored(key)).sha256).toBe(createHash('sha256').update(other).digest('hex'));
      else expect(await exists(key)).toBe(false);
    } finally {
      viaProxy.onModuleDestroy();
      await proxy.close();
    }
  }, 60_000);

  it.each([
    ['a multipart upload', 3 * 5 * MiB + 123_457, 4],
    ['the single PutObject', 1_000_000, 1],
  ])('sends %s with the CRC-32 S3 checks on each part, also where a ZIP writer\'s chunk is split across two parts', async (_case, storedBytes, sends) => {
    // The proxy refuses, as S3 does, a part whose x-amz-checksum-crc32 is not its bytes' (s3rver checks none).
    const proxy = await startS3Proxy(Number(new URL(process.env.S3_ENDPOINT!).port), { verifyCrc32: true });
    const viaProxy = new StorageRepository(testConfig({ S3_ENDPOINT: `http://127.0.0.1:${proxy.port}` }));
    try {
      const writer = new ZipArchiveWriter(1);
      const archive = new DigestStream();
      writer.output.pipe(archive);
      const key = `${uniqueId('checksums')}.zip`;
      const upload = new PooledMultipartUpload(viaProxy.client, archive, { bucket: BUCKET, key, partSize: 5 * MiB, queueSize: 2, contentType: 'application/zip' });
      const done = upload.done();
      // A stored entry's chunks reach the upload as the buffers the writer computed its CRC-32 over; a deflated
      // entry's do not. Uneven chunks put part boundaries inside chunks.
      await writer.addStream('inputs/scene.tif', unevenStream(randomBytes(storedBytes)), { store: true, date: new Date(0) });
      await writer.addStream('outputs/index.json', unevenStream(Buffer.from('{"band": 4}\n'.repeat(20_000))), { store: false, date: new Date(0) });
      await writer.finalize();

      await done;

      const sent = proxy.requests.filter((request) => request.method === 'PUT');
      expect(sent).toHaveLength(sends);
      for (const request of sent) expect(request.headers['x-amz-checksum-crc32']).toMatch(/^[A-Za-z0-9+/]{6}==$/);
      expect((await stored(key)).sha256).toBe(archive.digest());
    } finally {
      viaProxy.onModuleDestroy();
      await proxy.close();
    }
  }, 60_000);

  it('writes what fits in one part with a single PutObject, including nothing at all', async () => {
    const small = randomBytes(100_000);
    const [smallKey, emptyKey] = [`${uniqueId('single')}.bin`, `${uniqueId('empty')}.bin`];

    const upload = startUpload(BUCKET, smallKey, unevenStream(small), { partSize: 5 * MiB, queueSize: 4, contentType: 'application/zip' });
    await upload.done();
    await startUpload(BUCKET, emptyKey, Readable.from([]), { partSize: 5 * MiB, queueSize: 4, contentType: 'application/zip' }).done();

    const [smallObject, emptyObject] = [await stored(smallKey), await stored(emptyKey)];
    expect(smallObject.sha256).toBe(createHash('sha256').update(small).digest('hex'));
    expect(upload.buffersAllocated).toBe(1);
    expect(emptyObject.sha256).toBe(createHash('sha256').update(Buffer.alloc(0)).digest('hex'));
  });

  it('rejects with the stream failure and leaves no object when the source breaks after some parts', async () => {
    const key = `${uniqueId('broken')}.bin`;
    async function* breaking() {
      yield randomBytes(6 * MiB);
      yield randomBytes(6 * MiB);
      throw new Error('source connection reset');
    }

    const done = startUpload(BUCKET, key, Readable.from(breaking(), { objectMode: false }), { partSize: 5 * MiB, queueSize: 2, contentType: 'application/zip' }).done();

    await expect(done).rejects.toThrow('source connection reset');
    expect(await exists(key)).toBe(false);
  });

  it('rejects with S3\'s answer when a part cannot be written, and stops reading', async () => {
    let produced = 0;
    const endless = new Readable({
      read() {
        produced += MiB;
        this.push(randomBytes(MiB));
      },
    });

    const done = startUpload('no-such-bucket', 'x.bin', endless, { partSize: 5 * MiB, queueSize: 2, contentType: 'application/zip' }).done();

    await expect(done).rejects.toMatchObject({ name: 'NoSuchBucket' });
    // Reading stopped with the failure: at most the pool's buffers and the stream's own buffer were read.
    expect(produced).toBeLessThan(40 * MiB);
    endless.destroy();
  });

  it('abort() stops an upload in progress: done() rejects and no object appears', async () => {
    const key = `${uniqueId('aborted')}.bin`;
    const endless = new Readable({
      read() {
        setTimeout(() => this.push(randomBytes(MiB)), 5);
      },
    });
    const upload = startUpload(BUCKET, key, endless, { partSize: 5 * MiB, queueSize: 2, contentType: 'application/zip' });
    const done = upload.done();
    await new Promise((resolve) => setTimeout(resolve, 300));

    await upload.abort().catch(() => undefined);

    await expect(done).rejects.toMatchObject({ name: 'AbortError' });
    expect(await exists(key)).toBe(false);
    endless.destroy();
  });
});
