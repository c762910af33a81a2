import { expectedPackageBytes, partSizeFor, uploadQueueSizeFor } from './part-size.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe('partSizeFor', () => {
  it('uses 8 MiB parts for small packages', () => {
    expect(partSizeFor(10 * MiB)).toBe(8 * MiB);
  });

  it.each([50 * GiB, 300 * GiB, 1024 * GiB, 4900 * GiB])('fits %d bytes in fewer than 10,000 whole-MiB parts', (bytes) => {
    const size = partSizeFor(bytes);
    expect(size % MiB).toBe(0);
    expect(Math.ceil(bytes / size)).toBeLessThanOrEqual(9_000);
  });
});

describe('expectedPackageBytes', () => {
  it("is the entries' bytes, deflate's worst growth, and room for the ZIP's records and the manifest", () => {
    expect(expectedPackageBytes([])).toBe(MiB);
    expect(expectedPackageBytes([{ size: 10 * GiB, key: 'a.tif' }, { size: 0, key: 'b' }])).toBe(Math.ceil(10 * GiB * 1.001) + 2 * 1024 + 4 * 6 + MiB);
  });

  it('keeps the largest package MAX_PACKAGE_GIB allows (40960 GiB) within 9,000 parts of at most 5 GiB', () => {
    const bytes = 40_960 * GiB;
    const size = partSizeFor(bytes);
    expect(size).toBeLessThanOrEqual(5 * GiB);
    expect(Math.ceil(bytes / size)).toBeLessThanOrEqual(9_000);
  });
});

describe('uploadQueueSizeFor: what a build holds in part buffers', () => {
  const held = (bytes: number) => partSizeFor(bytes) * (uploadQueueSizeFor(partSizeFor(bytes)) + 1);

  it('keeps four 8 MiB part buffers up to 70 GiB: 32 MiB', () => {
    for (const bytes of [MiB, GiB, 70 * GiB]) {
      expect(uploadQueueSizeFor(partSizeFor(bytes))).toBe(3);
      expect(held(bytes)).toBe(32 * MiB);
    }
  });

  it.each([80 * GiB, 100 * GiB, 128 * GiB])('stays within 32 MiB with the larger parts of %d bytes', (bytes) => {
    expect(partSizeFor(bytes)).toBeGreaterThan(8 * MiB);
    expect(held(bytes)).toBeLessThanOrEqual(32 * MiB);
  });

  it.each([300 * GiB, 1024 * GiB, 4900 * GiB])('holds two parts for %d bytes (one sent while the next fills), the least a pipelined upload needs', (bytes) => {
    expect(uploadQueueSizeFor(partSizeFor(bytes))).toBe(1);
    expect(held(bytes)).toBe(2 * partSizeFor(bytes));
  });
});
