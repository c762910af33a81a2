import { ConfigError, loadConfig } from './app-config.js';

function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected the configuration to be refused');
}

describe('loadConfig', () => {
  it('runs on defaults that point at Postgres and Redis on localhost', () => {
    const sut = loadConfig({});
    expect(sut.PORT).toBe(3000);
    expect(sut.DATABASE_URL).toBe('postgresql://postgres:postgres@127.0.0.1:5432/job_downloads');
    expect(sut.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(sut.usesEmbeddedS3).toBe(true);
    expect(sut.assetsBucket).toBe(sut.S3_BUCKET);
  });

  it('says when the demo cannot be seeded: S3_ASSETS_BUCKET (default S3_BUCKET) outside ASSET_BUCKETS', () => {
    expect(loadConfig({}).demoBucketProblem).toBeUndefined();
    expect(loadConfig({ ASSET_BUCKETS: 'customer-assets,archive', S3_ASSETS_BUCKET: 'archive' }).demoBucketProblem).toBeUndefined();
    expect(loadConfig({ ASSET_BUCKETS: 'customer-assets' }).assetsBucket).toBe('job-downloads');
    expect(loadConfig({ ASSET_BUCKETS: 'customer-assets' }).demoBucketProblem).toBe(
      'the demo puts its files in S3_ASSETS_BUCKET (job-downloads, its default S3_BUCKET), which must be one of ASSET_BUCKETS (customer-assets)',
    );
  });

  it('converts numbers and booleans from their environment strings', () => {
    const sut = loadConfig({ PORT: '8080', S3_FORCE_PATH_STYLE: 'true', WORKER_CONCURRENCY: '4', S3_ENDPOINT: 'http://minio:9000' });
    expect(sut).toMatchObject({ PORT: 8080, S3_FORCE_PATH_STYLE: true, WORKER_CONCURRENCY: 4, S3_ENDPOINT: 'http://minio:9000' });
    expect(sut.usesEmbeddedS3).toBe(false);
  });

  it.each([
    ['PORT', 'eighty', 'PORT must be an integer between 1 and 65535'],
    ['PORT', '70000', 'PORT must be an integer between 1 and 65535'],
    ['DATABASE_URL', 'mysql://localhost/db', 'DATABASE_URL must be a postgresql:// URL (percent-encode # / ? @ : in the password)'],
    ['DATABASE_URL', 'postgresql://postgres:pa#ss@127.0.0.1:5432/job_downloads', 'DATABASE_URL must be a postgresql:// URL (percent-encode # / ? @ : in the password)'],
    ['DATABASE_URL', 'postgresql://postgres:pw@127.0.0.1:99999/job_downloads', 'DATABASE_URL must be a postgresql:// URL (percent-encode # / ? @ : in the password)'],
    ['REDIS_URL', 'localhost:6379', 'REDIS_URL must be a redis:// or rediss:// URL (percent-encode # / ? @ : in the password)'],
    ['REDIS_URL', 'redis://:pa/ss@127.0.0.1:6379', 'REDIS_URL must be a redis:// or rediss:// URL (percent-encode # / ? @ : in the password)'],
    ['REDIS_URL', 'redis://127.0.0.1:99999', 'REDIS_URL must be a redis:// or rediss:// URL (percent-encode # / ? @ : in the password)'],
    ['S3_ENDPOINT', 'minio:9000', 'S3_ENDPOINT must be an http:// or https:// URL'],
    ['S3_ENDPOINT', 'http://minio:90000', 'S3_ENDPOINT must be an http:// or https:// URL'],
    ['S3_ENDPOINT', 'http://minio:9000:9000', 'S3_ENDPOINT must be an http:// or https:// URL'],
    ['S3_PUBLIC_ENDPOINT', 'http://[::1', 'S3_PUBLIC_ENDPOINT must be an http:// or https:// URL'],
    ['S3_BUCKET', 'No_Such', 'S3_BUCKET must be a bucket name of 3 to 63 characters'],
    ['S3_FORCE_PATH_STYLE', 'perhaps', 'S3_FORCE_PATH_STYLE must be true or false'],
    ['SIGNED_URL_TTL_SECONDS', '0', 'SIGNED_URL_TTL_SECONDS must be an integer from 1 to 604800 (7 days)'],
    ['PACKAGE_RETENTION_HOURS', '1.5', 'PACKAGE_RETENTION_HOURS must be an integer from 1 to 876000 (100 years)'],
    ['PACKAGE_RETENTION_HOURS', '99999999999', 'PACKAGE_RETENTION_HOURS must be an integer from 1 to 876000 (100 years)'],
    ['WORKER_CONCURRENCY', '-1', 'WORKER_CONCURRENCY must be an integer from 1 to 64'],
    ['FETCH_CONCURRENCY', '0', 'FETCH_CONCURRENCY must be an integer from 1 to 64'],
    ['FETCH_BUFFER_MIB', '4', 'FETCH_BUFFER_MIB must be an integer from 8 to 1024'],
    ['UPLOAD_BUFFER_MIB', '8', 'UPLOAD_BUFFER_MIB must be an integer from 16 to 16384'],
    ['COMPRESSION', 'zstd', 'COMPRESSION must be one of auto, store, deflate'],
    ['MAX_PACKAGE_GIB', '40961', 'MAX_PACKAGE_GIB must be an integer from 1 to 40960'],
    ['REQUESTER_PAYS_BUCKETS', 'landsat, sentinel', 'REQUESTER_PAYS_BUCKETS must be bucket names separated by commas'],
    ['INTERNAL_API_TOKEN', 'fifteen-chars!!', 'INTERNAL_API_TOKEN must be at least 16 characters'],
    ['INTERNAL_API_TOKEN', 'a token that ends in a space ', 'INTERNAL_API_TOKEN must not contain control characters or begin or end with a space (HTTP cannot carry them)'],
    ['INTERNAL_API_TOKEN', 'a token with a\nline break', 'INTERNAL_API_TOKEN must not contain control characters or begin or end with a space (HTTP cannot carry them)'],
    ['WEBHOOK_SECRET_KEY', 'x'.repeat(31), 'WEBHOOK_SECRET_KEY must be at least 32 characters'],
  ])('refuses %s=%s, naming the variable and what it expects', (name, value, expected) => {
    expect(problemsOf({ [name]: value })).toEqual([expected]);
  });

  it('takes any token of 16 characters and any key of 32 as they are: spaces inside, any length, any script', () => {
    const token = 'correct horse battery staple ünïcödé';
    const key = `${'a long passphrase, spaces and all '.repeat(40)}ключ`;
    expect(loadConfig({ INTERNAL_API_TOKEN: token, WEBHOOK_SECRET_KEY: key })).toMatchObject({ INTERNAL_API_TOKEN: token, WEBHOOK_SECRET_KEY: key });
  });

  it('takes Postgres and Redis URLs with encoded passwords, IPv6 hosts and Unix sockets', () => {
    const urls = {
      DATABASE_URL: 'postgres://user:p%23ss%2Fw0rd@[::1]:5432/db?sslmode=disable',
      REDIS_URL: 'rediss://:p%40ss@[::1]:6380/2',
    };
    expect(loadConfig(urls)).toMatchObject(urls);
    for (const socket of ['postgresql:///db?host=/var/run/postgresql', 'postgresql://user:pw@/db?host=/cloudsql/project:region:instance', 'postgres://user@/db?host=/tmp']) {
      expect(loadConfig({ DATABASE_URL: socket }).DATABASE_URL).toBe(socket);
    }
  });

  it('reports every bad variable at once', () => {
    expect(problemsOf({ PORT: 'x', REDIS_URL: 'nope' })).toEqual([
      'PORT must be an integer between 1 and 65535',
      'REDIS_URL must be a redis:// or rediss:// URL (percent-encode # / ? @ : in the password)',
    ]);
  });

  it('refuses ports that one process would listen on twice', () => {
    expect(problemsOf({ INTERNAL_PORT: '3000' })).toEqual(['INTERNAL_PORT must differ from PORT']);
    expect(problemsOf({ EMBEDDED_S3_PORT: '3002' })).toEqual(['EMBEDDED_S3_PORT must differ from PORT and INTERNAL_PORT']);
    // With an S3 of its own, no embedded store listens.
    expect(loadConfig({ EMBEDDED_S3_PORT: '3002', S3_ENDPOINT: 'http://127.0.0.1:9000' }).EMBEDDED_S3_PORT).toBe(3002);
  });

  it('refuses an S3_REGION other than the one an AWS S3_ENDPOINT names, and takes any region for other endpoints', () => {
    expect(problemsOf({ S3_ENDPOINT: 'https://s3.eu-west-1.amazonaws.com', S3_REGION: 'us-east-1' })).toEqual(['S3_REGION must be the region S3_ENDPOINT names (eu-west-1)']);
    expect(problemsOf({ S3_ENDPOINT: 'https://s3-fips.us-gov-west-1.amazonaws.com', S3_REGION: 'us-gov-east-1' })).toEqual(['S3_REGION must be the region S3_ENDPOINT names (us-gov-west-1)']);
    expect(loadConfig({ S3_ENDPOINT: 'https://s3.dualstack.ap-southeast-2.amazonaws.com', S3_REGION: 'ap-southeast-2' }).S3_REGION).toBe('ap-southeast-2');
    expect(loadConfig({ S3_ENDPOINT: 'https://s3.cn-north-1.amazonaws.com.cn', S3_REGION: 'cn-north-1' }).S3_REGION).toBe('cn-north-1');
    expect(loadConfig({ S3_ENDPOINT: 'https://s3.amazonaws.com', S3_REGION: 'eu-west-1' }).S3_REGION).toBe('eu-west-1');
    expect(loadConfig({ S3_ENDPOINT: 'http://minio:9000', S3_REGION: 'eu-west-1' }).S3_REGION).toBe('eu-west-1');
  });

  it('never echoes a value, which may be a secret', () => {
    const message = (() => {
      try {
        loadConfig({ DATABASE_URL: 'mysql://user:s3cret@host/db' });
      } catch (error) {
        return (error as Error).message;
      }
      return '';
    })();
    expect(message).toContain('DATABASE_URL');
    expect(message).not.toContain('s3cret');
  });
});
