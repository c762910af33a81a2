import { text } from 'node:stream/consumers';
import { manifestStream, type ManifestEntry } from './manifest.js';

const fields = { workflow_id: 'wf', job_id: 'job', operation_id: 'op', created_at: '2026-12-01T10:00:00.000Z' };
const entry = (index: number): ManifestEntry => ({
  path: `inputs/scene/B${index}.tif`,
  source: `s3://assets/scene/B${index}.tif`,
  size: index * 1000,
  etag: `etag-"${index}"`,
  sha256: 'ab'.repeat(32),
});

describe('manifestStream', () => {
  it.each([0, 1, 2, 255, 256, 257, 1000])('streams exactly what JSON.stringify writes, for %d entries', async (count) => {
    const entries = Array.from({ length: count }, (_, index) => entry(index));

    const sut = await text(manifestStream(fields, entries));

    expect(sut).toBe(`${JSON.stringify({ ...fields, entries }, null, 2)}\n`);
  });
});
