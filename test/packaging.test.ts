import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { StorageRepository } from '../src/storage/storage.repository.js';
import { PackagingService } from '../src/packaging/packaging.service.js';
import { download, downloadPath, Fixtures, inspectZip, sha256, startTestApp, unzipTest, type SeededJob, type TestApp } from './support/harness.js';

const tiff = (bytes: number) => Buffer.concat([Buffer.from('II*\0'), randomBytes(bytes - 4)]);

describe('packaging a job run into one ZIP', () => {
  let fixtures: Fixtures;
  let service: TestApp;
  let scratch: string;

  beforeAll(async () => {
    fixtures = await Fixtures.create();
    service = await startTestApp('all');
    scratch = await mkdtemp(path.join(tmpdir(), 'packages-'));
  });

  afterAll(async () => {
    await service.close();
    await fixtures.close();
    await rm(scratch, { recursive: true, force: true });
  });

  /** PUT with Prefer: wait, as a caller who wants the package in one call. */
  async function requestPackage(job: SeededJob, wait = 30) {
    return service.http.put(downloadPath(job)).set('Authorization', `Bearer ${job.apiKey}`).set('Prefer', `wait=${wait}`).expect(200);
  }

  /** Every key in the packages bucket under the job's folder, whatever attempt or operation wrote it. */
  async function packageKeysOf(job: SeededJob): Promise<string[]> {
    const storage = service.app.get(StorageRepository);
    const prefix = `packages/${job.workflowId}/${job.jobId}/`;
    const page = await storage.client.send(new ListObjectsV2Command({ Bucket: service.config.S3_BUCKET, Prefix: prefix }));
    return (page.Contents ?? []).map((object) => object.Key!);
  }

  async function fetchZip(signedUrl: string, name: string) {
    const response = await download(signedUrl);
    expect(response.status).toBe(200);
    const file = path.join(scratch, name);
    await writeFile(file, response.body);
    return { file, response };
  }

  it('answers ready in one call and the ZIP holds every asset byte for byte, with a verified manifest', async () => {
    const inputs = { 'scene/B04.tif': tiff(300_000), 'scene/B08.tif': tiff(200_000), 'parameters.json': JSON.stringify({ index: 'NDVI' }) };
    const outputs = { 'ndvi.tif': tiff(400_000), 'stats/summary.csv': 'band,mean\nndvi,0.42\n'.repeat(50), 'footprint.geojson': JSON.stringify({ type: 'Point', coordinates: [1, 2] }) };
    const job = await fixtures.job({ inputs, outputs });

    const { body } = await requestPackage(job);

    expect(body).toMatchObject({ status: 'ready', workflowId: job.workflowId, progress: 100 });
    const { file, response } = await fetchZip(body.signed_url, 'complete.zip');
    expect(response.headers.get('content-type')).toBe('application/zip');
    expect(response.headers.get('content-disposition')).toBe(`attachment; filename="${job.workflowId}_${job.jobId}.zip"`);
    expect(response.body.length).toBe(body.size_bytes);
    // What a user checks a download against: the same as sha256sum of the file.
    expect(body.sha256).toBe(sha256(response.body));

    const zip = inspectZip(file);
    expect(zip.testzip).toBeNull();
    const expected = {
      ...Object.fromEntries(Object.entries(inputs).map(([name, content]) => [`inputs/${name}`, content])),
      ...Object.fromEntries(Object.entries(outputs).map(([name, content]) => [`outputs/${name}`, content])),
    };
    expect(zip.entries.map((e) => e.name).sort()).toEqual([...Object.keys(expected), 'manifest.json'].sort());
    expect(zip.entries.at(-1)?.name).toBe('manifest.json');
    for (const [name, content] of Object.entries(expected)) {
      expect(zip.entries.find((e) => e.name === name)?.sha256).toBe(sha256(content));
    }

    const manifest = JSON.parse(execFileSync('unzip', ['-p', file, 'manifest.json']).toString());
    expect(manifest).toMatchObject({ workflow_id: job.workflowId, job_id: job.jobId, operation_id: body.id });
    expect(new Date(manifest.created_at).getTime()).not.toBeNaN();
    expect(manifest.entries).toHaveLength(6);
    for (const entry of manifest.entries) {
      const content = expected[entry.path as keyof typeof expected];
      expect(entry.sha256).toBe(sha256(content));
      expect(entry.size).toBe(Buffer.byteLength(content));
      expect(entry.etag).toMatch(/^[0-9a-f]{32}$/);
      const folder = entry.path.startsWith('inputs/') ? job.inputsPrefix : job.outputsPrefix;
      expect(entry.source).toBe(`s3://test-assets/${folder}${entry.path.replace(/^(inputs|outputs)\//, '')}`);
    }
    expect(unzipTest(file)).toContain('No errors detected');

    const operation = await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: body.id } });
    expect(operation).toMatchObject({ status: 'ready', attempts: 1, entryCount: 6, sizeBytes: BigInt(response.body.length), sha256: sha256(response.body) });
    expect(operation.bytesTotal).toBe(BigInt(Object.values(expected).reduce((sum, c) => sum + Buffer.byteLength(c), 0)));
    expect(operation.expiresAt!.getTime() - operation.readyAt!.getTime()).toBe(168 * 3600 * 1000);
  });

  it('packages a job of more than 1,000 assets, listed page by page', async () => {
    const inputs = Object.fromEntries(Array.from({ length: 1_050 }, (_, i) => [`tiles/${String(i).padStart(4, '0')}.json`, `{"tile":${i}}`]));
    const job = await fixtures.job({ inputs, outputs: { 'mosaic.tif': tiff(1_000) } });

    const { body } = await requestPackage(job, 60);

    expect(body.status).toBe('ready');
    const { file } = await fetchZip(body.signed_url, 'many.zip');
    const zip = inspectZip(file);
    expect(zip.count).toBe(1_052);
    expect(zip.entries.find((e) => e.name === 'inputs/tiles/1049.json')?.sha256).toBe(sha256('{"tile":1049}'));
  }, 120_000);

  it('stores already-compressed formats and deflates text-like ones', async () => {
    const job = await fixtures.job({
      inputs: { 'a.tif': tiff(50_000), 'b.jp2': randomBytes(20_000), 'c.png': randomBytes(20_000), 'd.nc': randomBytes(20_000), 'e.zip': randomBytes(1_000), 'f.bin': randomBytes(10_000) },
      outputs: { 'g.json': '{"a":1}'.repeat(500), 'h.csv': 'x,y\n'.repeat(500), 'i.xml': '<a/>'.repeat(500), 'j.txt': 'text '.repeat(500), 'k.geojson': '{}'.repeat(500) },
    });

    const { body } = await requestPackage(job);
    const { file } = await fetchZip(body.signed_url, 'policy.zip');

    const methods = Object.fromEntries(inspectZip(file).entries.map((e) => [e.name.split('/').at(-1), e.method]));
    expect(methods).toEqual({
      'a.tif': 'stored', 'b.jp2': 'stored', 'c.png': 'stored', 'd.nc': 'stored', 'e.zip': 'stored', 'f.bin': 'stored',
      'g.json': 'deflated', 'h.csv': 'deflated', 'i.xml': 'deflated', 'j.txt': 'deflated', 'k.geojson': 'deflated',
      'manifest.json': 'deflated',
    });
  });

  it('stores everything when COMPRESSION=store', async () => {
    const storeAll = await startTestApp('all', { COMPRESSION: 'store' });
    try {
      const job = await fixtures.job({ inputs: { 'a.json': '{"a":1}'.repeat(100) }, outputs: { 'b.csv': 'x,y\n'.repeat(100) } });
      const { body } = await storeAll.http.put(downloadPath(job)).set('Authorization', job.apiKey).set('Prefer', 'wait=30').expect(200);
      const { file } = await fetchZip(body.signed_url, 'store.zip');
      expect(inspectZip(file).entries.map((e) => e.method)).toEqual(['stored', 'stored', 'stored']);
    } finally {
      await storeAll.close();
    }
  });

  it('makes hostile keys safe: nothing extracts outside the target folder and no name collides', async () => {
    const job = await fixtures.job({
      inputs: {
        '..\\..\\evil.txt': 'backslashes',
        'dir/..': 'trailing dot-dot',
        'données/été.tif': tiff(1_000),
        'Scene.TIF': tiff(1_000),
        'scene.tif': tiff(1_000),
        'SCENE.tif': tiff(1_000),
        'dir/': '',
        'odd name (1) [final].json': '{}',
        // An object named like the folder of others: the folder's files keep their paths.
        tiles: 'a file named like a folder',
        'tiles/0.png': 'tile zero',
        // S3 lets a key ending in "/" hold bytes: an object, not a folder marker.
        'kept/': 'bytes under a key ending in a slash',
        // Names Windows refuses: a colon (also an NTFS stream), a device name.
        'scene:01.tif': tiff(1_000),
        'nul.txt': 'not the null device',
      },
      outputs: { 'report.csv': 'a\n', 'Report.csv': 'b\n' },
    });

    const { body } = await requestPackage(job);
    expect(body.status).toBe('ready');
    const { file } = await fetchZip(body.signed_url, 'hostile.zip');

    const names = inspectZip(file).entries.map((e) => e.name);
    expect(names).toHaveLength(15 + 1 - 1); // the folder marker is skipped; manifest.json is added
    for (const name of names) {
      expect(name).not.toMatch(/^\//);
      expect(name).not.toContain('\\');
      expect(name.split('/')).not.toContain('..');
      expect(name.split('/')).not.toContain('.');
      expect(name.split('/')).not.toContain('');
      expect(name).toMatch(/^(inputs|outputs)\/|^manifest\.json$/);
    }
    expect(new Set(names.map((n) => n.toLowerCase())).size).toBe(names.length);
    expect(names).toEqual(expect.arrayContaining(['inputs/evil.txt', 'inputs/données/été.tif', 'inputs/odd name (1) [final].json', 'inputs/kept', 'inputs/scene_01.tif', 'inputs/_nul.txt']));
    for (const name of names) expect(name).not.toMatch(/[<>:"|?*]|[. ]$|(^|\/)(con|prn|aux|nul|com\d|lpt\d)(\.|\/|$)/i);

    const target = await mkdtemp(path.join(scratch, 'extract-'));
    execFileSync('unzip', ['-q', file, '-d', target]);
    const extracted = await readdir(target, { recursive: true });
    expect(extracted.filter((p) => !p.includes('/') && !['inputs', 'outputs', 'manifest.json'].includes(p))).toEqual([]);
    expect(await readdir(scratch)).not.toContain('evil.txt');
    expect(await readFile(path.join(target, 'inputs/tiles/0.png'), 'utf8')).toBe('tile zero');
    expect(await readFile(path.join(target, 'inputs/tiles~2'), 'utf8')).toBe('a file named like a folder');
    expect(await readFile(path.join(target, 'inputs/kept'), 'utf8')).toBe('bytes under a key ending in a slash');
  });

  it('fails a job with no assets with NO_ASSETS and leaves no package', async () => {
    const job = await fixtures.job({ inputs: { 'only-a-folder/': '' } });

    const { body } = await requestPackage(job);

    expect(body).toMatchObject({ status: 'failed', signed_url: '', error: { code: 'NO_ASSETS', message: 'the job run has no input or output assets to package' } });
    const operation = await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: body.id } });
    expect(operation).toMatchObject({ status: 'failed', errorCode: 'NO_ASSETS', attempts: 1, archiveKey: null });
    expect(await packageKeysOf(job)).toEqual([]);
  });

  it('fails cleanly, without retrying, when a source disappears between listing and reading', async () => {
    const job = await fixtures.job({ inputs: { 'a.tif': tiff(10_000), 'b.tif': tiff(10_000) }, outputs: { 'c.tif': tiff(10_000) } });
    const storage = service.app.get(StorageRepository);
    const listObjects = storage.listObjects;
    // Deletes an input right after the real listing has seen it: the build then finds it gone in S3.
    storage.listObjects = async function* (location) {
      for await (const object of listObjects.call(storage, location)) yield object;
      if (location.prefix === job.inputsPrefix) await storage.deleteObject('test-assets', `${job.inputsPrefix}b.tif`);
    };
    try {
      const { body } = await requestPackage(job);

      expect(body).toMatchObject({ status: 'failed', signed_url: '', error: { code: 'SOURCE_MISSING', message: 'an asset of the job run no longer exists' } });
      const operation = await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: body.id } });
      expect(operation).toMatchObject({ status: 'failed', errorCode: 'SOURCE_MISSING', attempts: 1, readyAt: null });
      // Nothing under the job's folder: no package of any attempt, complete or partial.
      expect(await packageKeysOf(job)).toEqual([]);
    } finally {
      storage.listObjects = listObjects;
    }
  });

  it('builds each operation once even when it is delivered twice at the same time (at-least-once queue)', async () => {
    const job = await fixtures.job({ inputs: { 'a.tif': tiff(100_000) }, outputs: { 'b.json': '{}' } });
    const operation = await fixtures.prisma.downloadOperation.create({ data: { workflowId: job.workflowId, jobId: job.jobId } });
    const packaging = service.app.get(PackagingService);

    const outcomes = await Promise.all([packaging.package(operation.id), packaging.package(operation.id)]);
    const again = await packaging.package(operation.id);

    expect(outcomes.sort()).toEqual(['ready', 'skipped']);
    expect(again).toBe('skipped');
    const stored = await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: operation.id } });
    expect(stored.status).toBe('ready');
    expect(await fixtures.prisma.downloadOperation.count({ where: { jobId: job.jobId, status: 'ready' } })).toBe(1);
    const { body } = await service.http.get(downloadPath(job)).set('Authorization', job.apiKey).expect(200);
    const { file, response } = await fetchZip(body.signed_url, 'twice.zip');
    expect(sha256(response.body)).toBe(stored.sha256);
    expect(inspectZip(file).testzip).toBeNull();
  });
});
