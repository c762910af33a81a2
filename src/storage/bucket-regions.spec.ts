import { createServer, type IncomingMessage } from 'node:http';
import { loadConfig } from '../platform/config/app-config.js';
import { redirectedRegion } from './bucket-regions.js';
import { s3ClientConfigIn } from './s3-client.js';
import { StorageRepository } from './storage.repository.js';

const signingRegion = (request: IncomingMessage) => /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(request.headers.authorization ?? '')?.[1];

describe('BucketRegions: asset buckets outside S3_REGION', () => {
  it('a HEAD answered 400 with the bucket region is sent again there, and later requests go there directly', async () => {
    // AWS answers a HEAD signed for the wrong region 400, with no body; the region is in x-amz-bucket-region.
    const seen: Array<{ bucket: string; region: string | undefined }> = [];
    const server = createServer((request, response) => {
      const bucket = (request.url ?? '').split('/')[1];
      const region = signingRegion(request);
      seen.push({ bucket, region });
      const home = bucket === 'far' ? 'ap-southeast-2' : 'us-east-1';
      if (region !== home) return void response.writeHead(400, { 'x-amz-bucket-region': home }).end();
      response.writeHead(200, { etag: '"abc"', 'content-length': '5' }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const storage = new StorageRepository(loadConfig({ S3_ENDPOINT: `http://127.0.0.1:${port}`, S3_FORCE_PATH_STYLE: 'true', S3_REGION: 'us-east-1' }));
    try {
      expect(await storage.headObject('far', 'a.tif')).toMatchObject({ bucket: 'far', key: 'a.tif', size: 5, etag: 'abc' });
      expect(seen).toEqual([
        { bucket: 'far', region: 'us-east-1' },
        { bucket: 'far', region: 'ap-southeast-2' },
      ]);

      seen.length = 0;
      await Promise.all([storage.headObject('far', 'b.tif'), storage.headObject('near', 'c.tif')]);
      expect(seen.sort((a, b) => a.bucket.localeCompare(b.bucket))).toEqual([
        { bucket: 'far', region: 'ap-southeast-2' },
        { bucket: 'near', region: 'us-east-1' },
      ]);
    } finally {
      storage.onModuleDestroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('takes a redirect only when S3 names another region than the one the request was signed for', () => {
    const failure = (status: number, region?: string) =>
      Object.assign(new Error('refused'), { $metadata: { httpStatusCode: status }, $response: { headers: region ? { 'x-amz-bucket-region': region } : {} } });
    expect(redirectedRegion(failure(301, 'eu-west-1'), 'us-east-1')).toBe('eu-west-1');
    expect(redirectedRegion(failure(400, 'eu-west-1'), 'us-east-1')).toBe('eu-west-1');
    expect(redirectedRegion(failure(400, 'us-east-1'), 'us-east-1')).toBeUndefined();
    expect(redirectedRegion(failure(301), 'us-east-1')).toBeUndefined();
    expect(redirectedRegion(failure(403, 'eu-west-1'), 'us-east-1')).toBeUndefined();
    expect(redirectedRegion(new Error('socket hang up'), 'us-east-1')).toBeUndefined();
  });

  it("drops an AWS endpoint for another region's client (it names its region) and keeps any other", () => {
    const aws = loadConfig({ S3_ENDPOINT: 'https://s3.eu-west-1.amazonaws.com', S3_REGION: 'eu-west-1' });
    expect(s3ClientConfigIn(aws, 'us-west-2')).toMatchObject({ region: 'us-west-2', endpoint: undefined });
    const minio = loadConfig({ S3_ENDPOINT: 'http://minio.internal:9000', S3_REGION: 'us-east-1', S3_FORCE_PATH_STYLE: 'true' });
    expect(s3ClientConfigIn(minio, 'eu-west-1')).toMatchObject({ region: 'eu-west-1', endpoint: 'http://minio.internal:9000', forcePathStyle: true });
  });
});
