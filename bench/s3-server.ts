import S3rver from 's3rver';
import { completeUploadsLikeS3 } from './s3-complete.js';

/**
 * Child-process entry: an s3rver on a free loopback port. It runs in its own process so that its CPU (it is a
 * Node server hashing and writing every byte) is not counted against the pipeline being measured.
 * argv: <directory> <bucket>...; reports { port } over IPC; stops when the parent goes away.
 * BENCH_S3_COMPLETE=rewrite keeps s3rver's own CompleteMultipartUpload (see s3-complete.ts).
 */
const [directory, ...buckets] = process.argv.slice(2);
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  directory,
  silent: true,
  configureBuckets: buckets.map((name) => ({ name })),
});
if (process.env.BENCH_S3_COMPLETE !== 'rewrite') completeUploadsLikeS3(server);
const { port } = await server.run();
process.send!({ port });
// The IPC channel closes when the parent exits or lets go of this child, whatever the reason.
process.once('disconnect', () => {
  server.close().finally(() => process.exit(0));
});
