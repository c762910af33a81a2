import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, GetObjectCommand, HeadObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';
import { completeUploadsLikeS3, storeOf } from './s3-complete.js';

const BUCKET = 'assembled';

describe("the bench's s3rver completing multipart uploads as S3 does", () => {
  let directory: string;
  let server: S3rver;
  let s3: S3Client;

  beforeAll(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'jd-s3-complete-'));
    server = new S3rver({ address: '127.0.0.1', port: 0, directory, silent: true, configureBuckets: [{ name: BUCKET }] });
    completeUploadsLikeS3(server);
    const { port } = await server.run();
    s3 = new S3Client({
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
  });

  afterAll(async () => {
    s3?.destroy();
    await server?.close();
    await rm(directory, { recursive: true, force: true });
  });

  /** Where s3rver keeps the parts of unfinished uploads, one folder per upload id. */
  const uploadsFolder = () => storeOf(server).getResourcePath(BUCKET, undefined, 'uploads');

  /** Uploads `parts` in the order given (part numbers as listed), and returns what each part was acknowledged with. */
  async function uploadParts(key: string, parts: Array<{ number: number; bytes: Buffer }>) {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, ContentType: 'application/zip' }));
    const acknowledged: Array<{ PartNumber: number; ETag: string }> = [];
    for (const part of parts) {
      const { ETag } = await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: part.number, Body: part.bytes }));
      acknowledged.push({ PartNumber: part.number, ETag: ETag! });
    }
    return { uploadId: UploadId!, acknowledged };
  }

  it('joins the listed parts in part-number order, and gives the object the ETag S3 gives a multipart object', async () => {
    const parts = [1, 2, 3].map((number) => ({ number, bytes: randomBytes(64 * 1024 + number) }));
    // Sent out of order, as parallel part uploads arrive.
    const { uploadId, acknowledged } = await uploadParts('package.zip', [parts[2], parts[0], parts[1]]);
    expect(await readdir(uploadsFolder())).toContain(uploadId);

    const completed = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: BUCKET,
        Key: 'package.zip',
        UploadId: uploadId,
        MultipartUpload: { Parts: [...acknowledged].sort((a, b) => a.PartNumber - b.PartNumber) },
      }),
    );

    const partDigests = Buffer.concat(parts.map((part) => createHash('md5').update(part.bytes).digest()));
    const expectedEtag = `"${createHash('md5').update(partDigests).digest('hex')}-3"`;
    expect(completed.ETag).toBe(expectedEtag);
    const object = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'package.zip' }));
    expect(Buffer.from(await object.Body!.transformToByteArray())).toEqual(Buffer.concat(parts.map((part) => part.bytes)));
    expect(object.ETag).toBe(expectedEtag);
    expect(object.ContentType).toBe('application/zip');
    // A range is served from the assembled object too.
    const range = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'package.zip', Range: `bytes=${64 * 1024}-${64 * 1024 + 9}` }));
    expect(Buffer.from(await range.Body!.transformToByteArray())).toEqual(Buffer.concat(parts.map((part) => part.bytes)).subarray(64 * 1024, 64 * 1024 + 10));
    // The parts are gone once the object stands.
    expect(await readdir(uploadsFolder())).not.toContain(uploadId);
  });

  it('leaves out parts the complete does not list, as S3 does', async () => {
    const parts = [1, 2].map((number) => ({ number, bytes: randomBytes(1000 * number) }));
    const { uploadId, acknowledged } = await uploadParts('first-only.zip', parts);

    await s3.send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: 'first-only.zip', UploadId: uploadId, MultipartUpload: { Parts: [acknowledged[0]] } }));

    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'first-only.zip' }));
    expect(head.ContentLength).toBe(1000);
  });

  it('refuses a complete that lists a part with another ETag (InvalidPart), and writes no object', async () => {
    const { uploadId, acknowledged } = await uploadParts('mismatched.zip', [{ number: 1, bytes: randomBytes(2048) }]);

    await expect(
      s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: BUCKET,
          Key: 'mismatched.zip',
          UploadId: uploadId,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: `"${'0'.repeat(32)}"` }] },
        }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidPart' });
    await expect(s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'mismatched.zip' }))).rejects.toMatchObject({ name: 'NotFound' });
    expect(acknowledged).toHaveLength(1);
  });
});
