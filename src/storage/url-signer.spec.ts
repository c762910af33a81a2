import { loadConfig } from '../platform/config/app-config.js';
import { DownloadUrlSigner } from './url-signer.js';

/** The same parameters, whatever their order. */
function normalised(url: string): string {
  const parsed = new URL(url);
  const query = [...parsed.searchParams.entries()].sort(([a], [b]) => a.localeCompare(b));
  return `${parsed.origin}${parsed.pathname}?${query.map(([k, v]) => `${k}=${v}`).join('&')}`;
}

describe('DownloadUrlSigner.sign', () => {
  const signingDate = new Date('2026-11-29T12:00:00Z');
  const keys = ['packages/wf-1/job-1/0b5c.zip', 'packages/wf é/job+1/a b~(x)!*\'.zip', 'packages/ümlaut/日本/数据.zip'];

  it.each([
    ['a path-style endpoint (MinIO, s3rver)', { S3_ENDPOINT: 'http://127.0.0.1:9000', S3_FORCE_PATH_STYLE: 'true' }],
    ['AWS, virtual-hosted style', { S3_ENDPOINT: 'https://s3.eu-west-1.amazonaws.com', S3_REGION: 'eu-west-1' }],
    ['a public endpoint for signing', { S3_ENDPOINT: 'http://minio:9000', S3_PUBLIC_ENDPOINT: 'https://files.example.com', S3_FORCE_PATH_STYLE: 'true' }],
  ])('signs exactly the URL the SDK signs, for %s', async (_label, env) => {
    // Credentials come from the SDK's default chain: the test run's AWS_ACCESS_KEY_ID and secret.
    const sut = new DownloadUrlSigner(loadConfig(env));
    try {
      for (const key of keys) {
        const fast = await sut.sign('job-downloads', key, 'wf_job.zip', 900, signingDate);
        const reference = await sut.signWithSdk('job-downloads', key, 'wf_job.zip', 900, signingDate);
        expect(normalised(fast)).toBe(normalised(reference));
        if (env.S3_ENDPOINT.includes('amazonaws')) expect(new URL(fast).host).toBe('job-downloads.s3.eu-west-1.amazonaws.com');
        expect(new URL(fast).searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
        // A GET has no body: no checksum of one in the URL.
        expect([...new URL(fast).searchParams.keys()].filter((name) => /checksum/i.test(name))).toEqual([]);
      }
    } finally {
      sut.onModuleDestroy();
    }
  });

  it('signs for S3_PUBLIC_ENDPOINT with the embedded store too (the local all-in-one reached through another address)', async () => {
    const sut = new DownloadUrlSigner(loadConfig({ S3_PUBLIC_ENDPOINT: 'https://files.example.com' }));
    const local = new DownloadUrlSigner(loadConfig({}));
    try {
      const url = new URL(await sut.sign('job-downloads', keys[0], 'wf_job.zip', 900, signingDate));
      expect(`${url.origin}${url.pathname}`).toBe(`https://files.example.com/job-downloads/${keys[0]}`);
      expect(url.searchParams.get('X-Amz-Credential')).toMatch(/^S3RVER\//);
      expect(new URL(await local.sign('job-downloads', keys[0], 'wf_job.zip', 900, signingDate)).origin).toBe('http://127.0.0.1:4568');
    } finally {
      sut.onModuleDestroy();
      local.onModuleDestroy();
    }
  });
});
