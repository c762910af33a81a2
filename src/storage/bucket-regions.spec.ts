import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { loadConfig } from '../platform/config/app-config.js';
import { redirectedRegion } from './bucket-regions.js';
import { s3ClientConfigIn } from './s3-client.js';
import { StorageRepository } from './storage.repository.js';

const signingRegion = (request: IncomingMessage) => /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(request.headers.authorization ?? '')?.[1];

interface Seen {
  method: string;
  path: string;
  region: string | undefined;
}

/** A StorageRepository (S3_REGION us-east-1) talking to a server that answers as `answer` says, and what it received. */
async function withStore(answer: (request: IncomingMessage, response: ServerResponse, path: string) => void, use: (storage: StorageRepository, seen: Seen[]) => Promise<void>): Promise<void> {
  const seen: Seen[] = [];
  const server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0];
    seen.push({ method: request.method ?? '', path, region: signingRegion(request) });
    answer(request, response, path);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const storage = new StorageRepository(loadConfig({ S3_ENDPOINT: `http://127.0.0.1:${port}`, S3_FORCE_PATH_STYLE: 'true', S3_REGION: 'us-east-1' }));
  try {
    await use(storage, seen);
  } finally {
    storage.onModuleDestroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

const FAR = 'ap-southeast-2';
const found = (response: ServerResponse) => response.writeHead(200, { etag: '"abc"', 'content-length': '5' }).end();

describe('BucketRegions: asset buckets outside S3_REGION', () => {
  it('a HEAD answered 400 with the bucket region is sent again there, and later requests go there directly', async () => {
    // AWS answers a HEAD signed for the wrong region 400, with no body; the region is in x-amz-bucket-region.
    await withStore(
      (request, response, path) => {
        const home = path.startsWith('/far/') ? FAR : 'us-east-1';
        if (signingRegion(request) !== home) return void response.writeHead(400, { 'x-amz-bucket-region': home }).end();
        found(response);
      },
      async (storage, seen) => {
        expect(await storage.headObject('far', 'a.tif')).toMatchObject({ bucket: 'far', key: 'a.tif', size: 5, etag: 'abc' });
        expect(seen.map((request) => request.region)).toEqual(['us-east-1', FAR]);

        seen.length = 0;
        await Promise.all([storage.headObject('far', 'b.tif'), storage.headObject('near', 'c.tif')]);
        expect(seen.sort((a, b) => a.path.localeCompare(b.path))).toEqual([
          { method: 'HEAD', path: '/far/b.tif', region: FAR },
          { method: 'HEAD', path: '/near/c.tif', region: 'us-east-1' },
        ]);
      },
    );
  });

  it('a HEAD answered 400 without the region asks HeadBucket where the bucket is', async () => {
    await withStore(
      (request, response, path) => {
        if (path === '/far/') return void response.writeHead(301, { 'x-amz-bucket-region': FAR }).end();
        if (signingRegion(request) !== FAR) return void response.writeHead(400).end();
        found(response);
      },
      async (storage, seen) => {
        expect(await storage.headObject('far', 'a.tif')).toMatchObject({ size: 5, etag: 'abc' });
        expect(seen).toEqual([
          { method: 'HEAD', path: '/far/a.tif', region: 'us-east-1' },
          { method: 'HEAD', path: '/far/', region: 'us-east-1' },
          { method: 'HEAD', path: '/far/a.tif', region: FAR },
        ]);
      },
    );
  });

  it('a listing answered AuthorizationHeaderMalformed is sent again in the region its body names', async () => {
    await withStore(
      (request, response) => {
        if (signingRegion(request) !== FAR) {
          return void response
            .writeHead(400, { 'content-type': 'application/xml' })
            .end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AuthorizationHeaderMalformed</Code><Message>the region 'us-east-1' is wrong; expecting '${FAR}'</Message><Region>${FAR}</Region></Error>`);
        }
        response
          .writeHead(200, { 'content-type': 'application/xml' })
          .end('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>far</Name><Prefix>p/</Prefix><KeyCount>1</KeyCount><IsTruncated>false</IsTruncated><Contents><Key>p/a.tif</Key><ETag>"abc"</ETag><Size>5</Size></Contents></ListBucketResult>');
      },
      async (storage, seen) => {
        const listed = [];
        for await (const object of storage.listObjects({ bucket: 'far', prefix: 'p/' })) listed.push(object);
        expect(listed).toEqual([{ bucket: 'far', key: 'p/a.tif', size: 5, etag: 'abc' }]);
        expect(seen.map((request) => request.region)).toEqual(['us-east-1', FAR]);
      },
    );
  });

  it('follows no region that is not a region name, and keeps none that did not answer', async () => {
    await withStore(
      (_request, response) => void response.writeHead(301, { 'x-amz-bucket-region': 'evil.example/..' }).end(),
      async (storage, seen) => {
        await expect(storage.headObject('far', 'a.tif')).rejects.toMatchObject({ $metadata: { httpStatusCode: 301 } });
        expect(seen.map((request) => request.region)).toEqual(['us-east-1']);
      },
    );
  });

  it('takes a redirect only when S3 names another region than the one the request was signed for', () => {
    const failure = (status: number, region?: string, body: object = {}) =>
      Object.assign(new Error('refused'), { $metadata: { httpStatusCode: status }, $response: { headers: region ? { 'x-amz-bucket-region': region } : {} } }, body);
    expect(redirectedRegion(failure(301, 'eu-west-1'), 'us-east-1')).toBe('eu-west-1');
    expect(redirectedRegion(failure(400, 'eu-west-1'), 'us-east-1')).toBe('eu-west-1');
    expect(redirectedRegion(failure(400, undefined, { Region: 'eu-west-1' }), 'us-east-1')).toBe('eu-west-1');
    expect(redirectedRegion(failure(400, 'us-east-1'), 'us-east-1')).toBeUndefined();
    expect(redirectedRegion(failure(301), 'us-east-1')).toBeUndefined();
    expect(redirectedRegion(failure(403, 'eu-west-1'), 'us-east-1')).toBeUndefined();
    expect(redirectedRegion(new Error('socket hang up'), 'us-east-1')).toBeUndefined();
  });

  it("drops an AWS endpoint for another region's client (it names its region), FIPS and dual-stack kept, and keeps any other", () => {
    // The service's own region is the one its endpoint names (the configuration refuses any other).
    const aws = (endpoint: string) => s3ClientConfigIn(loadConfig({ S3_ENDPOINT: endpoint, S3_REGION: new URL(endpoint).hostname.split('.').at(-3) }), 'us-west-2');
    expect(aws('https://s3.eu-west-1.amazonaws.com')).toMatchObject({ region: 'us-west-2', endpoint: undefined, useFipsEndpoint: false, useDualstackEndpoint: false });
    expect(aws('https://s3-fips.us-gov-west-1.amazonaws.com')).toMatchObject({ endpoint: undefined, useFipsEndpoint: true, useDualstackEndpoint: false });
    expect(aws('https://s3.dualstack.eu-west-1.amazonaws.com')).toMatchObject({ endpoint: undefined, useFipsEndpoint: false, useDualstackEndpoint: true });
    expect(aws('https://s3-fips.dualstack.us-east-2.amazonaws.com')).toMatchObject({ endpoint: undefined, useFipsEndpoint: true, useDualstackEndpoint: true });
    const minio = loadConfig({ S3_ENDPOINT: 'http://minio.internal:9000', S3_REGION: 'us-east-1', S3_FORCE_PATH_STYLE: 'true' });
    expect(s3ClientConfigIn(minio, 'eu-west-1')).toMatchObject({ region: 'eu-west-1', endpoint: 'http://minio.internal:9000', forcePathStyle: true });
  });
});
