import { S3Client } from '@aws-sdk/client-s3';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { PooledMultipartUpload } from '../src/packaging/multipart-upload.js';
import { loadConfig } from '../src/platform/config/app-config.js';
import { createS3Client, s3ClientConfig } from '../src/storage/s3-client.js';

const MiB = 1024 * 1024;

export interface TlsUploadResult {
  bytes: number;
  /** CPU seconds per GiB of the uploading process, median of the runs. */
  unsignedCpuPerGiB: number;
  signedCpuPerGiB: number;
}

/**
 * A TLS server in a process of its own (so that its decryption is not counted) that takes every request whole
 * and answers 200 with an ETag: enough for CreateMultipartUpload's caller to go on with a made-up UploadId.
 */
const SINK_SCRIPT = `
const https = require('node:https'); const fs = require('node:fs');
const [key, cert] = process.argv.slice(1);
const server = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (request, response) => {
  request.resume();
  request.on('end', () => {
    const body = request.url.includes('uploads') && request.method === 'POST' && !request.url.includes('uploadId=')
      ? '<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>sink</UploadId></InitiateMultipartUploadResult>'
      : '<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><ETag>"sink"</ETag></CompleteMultipartUploadResult>';
    response.writeHead(200, { etag: '"sink"', 'content-type': 'application/xml' }).end(request.method === 'POST' ? body : undefined);
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;

/** The same buffer `count` times: the source costs nothing, whatever the mode. */
function repeated(chunk: Buffer, count: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      this.push(sent++ < count ? chunk : null);
    },
  });
}

/**
 * What signing each upload part costs over https: the service's client (payload unsigned, as botocore does over
 * https) against the SDK's default (every part hashed whole with SHA-256 to sign it), uploading `bytes` as 8 MiB
 * parts with the real PooledMultipartUpload to a local TLS sink. Runs alternate; medians are reported.
 */
export async function benchTlsUpload(bytes: number, runs: number, log: (line: string) => void): Promise<TlsUploadResult | undefined> {
  const directory = await mkdtemp(path.join(tmpdir(), 'bench-tls-'));
  const [key, cert] = [path.join(directory, 'key.pem'), path.join(directory, 'cert.pem')];
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  } catch {
    log('upload over https: skipped (no openssl to make a certificate)');
    await rm(directory, { recursive: true, force: true });
    return undefined;
  }
  const sink = spawn(process.execPath, ['-e', SINK_SCRIPT, key, cert], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      sink.stdout.once('data', (data: Buffer) => resolve(Number(data.toString().trim())));
      sink.once('exit', (code) => reject(new Error(`the TLS sink exited (${code})`)));
    });
    const config = loadConfig({ S3_ENDPOINT: `https://127.0.0.1:${port}`, S3_FORCE_PATH_STYLE: 'true' });
    const options = { ...s3ClientConfig(config), credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' }, requestHandler: { httpsAgent: { keepAlive: true, rejectUnauthorized: false } } };
    const cpu: Record<'unsigned' | 'signed', number[]> = { unsigned: [], signed: [] };
    const chunk = Buffer.alloc(MiB, 7);
    for (let run = 0; run < runs; run++) {
      for (const mode of ['unsigned', 'signed'] as const) {
        const client = mode === 'unsigned' ? createS3Client(options) : new S3Client(options);
        try {
          const upload = (count: number) =>
            new PooledMultipartUpload(client, repeated(chunk, count), { bucket: 'b', key: 'k', contentType: 'application/zip', partSize: 8 * MiB, queueSize: 3 }).done();
          await upload(16); // connections and TLS sessions up first, not counted
          const started = process.cpuUsage();
          await upload(bytes / MiB);
          const used = process.cpuUsage(started);
          cpu[mode].push((used.user + used.system) / 1e6 / (bytes / 1024 ** 3));
        } finally {
          client.destroy();
        }
      }
      log(`upload over https, run ${run + 1}: unsigned ${cpu.unsigned.at(-1)!.toFixed(2)} s CPU/GiB, signed ${cpu.signed.at(-1)!.toFixed(2)}`);
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
    return { bytes, unsignedCpuPerGiB: median(cpu.unsigned), signedCpuPerGiB: median(cpu.signed) };
  } finally {
    sink.kill('SIGKILL');
    await rm(directory, { recursive: true, force: true });
  }
}

export function tlsUploadFigureLine(result: TlsUploadResult): string {
  return (
    `upload over https, ${result.bytes / 1024 ** 3} GiB of 8 MiB parts to a TLS sink: ${result.unsignedCpuPerGiB.toFixed(2)} s CPU/GiB with parts unsigned = ` +
    `${(result.unsignedCpuPerGiB / result.signedCpuPerGiB).toFixed(2)} x the SDK's default, every part hashed to sign it (${result.signedCpuPerGiB.toFixed(2)} s) [no target]`
  );
}
