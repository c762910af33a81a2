import { partSizeFor } from './part-size.js';

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
