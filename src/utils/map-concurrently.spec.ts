import { mapConcurrently } from './map-concurrently.js';

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('mapConcurrently', () => {
  it('answers in the order of the items, whatever order the calls finish in, never more than the limit at once', async () => {
    let running = 0;
    let most = 0;
    const results = await mapConcurrently([30, 5, 20, 1, 10, 2], 3, async (ms, index) => {
      most = Math.max(most, ++running);
      await tick(ms);
      running--;
      return `${index}:${ms}`;
    });

    expect(results).toEqual(['0:30', '1:5', '2:20', '3:1', '4:10', '5:2']);
    expect(most).toBe(3);
  });

  it('rejects with the first failure and starts nothing after it', async () => {
    const started: number[] = [];
    const run = mapConcurrently([1, 2, 3, 4, 5, 6], 2, async (item) => {
      started.push(item);
      await tick(item === 2 ? 1 : 20);
      if (item === 2) throw new Error('item 2 failed');
      return item;
    });

    await expect(run).rejects.toThrow('item 2 failed');
    await tick(40);
    expect(started).toEqual([1, 2]);
  });

  it('answers an empty list at once', async () => {
    await expect(mapConcurrently([], 4, async () => 1)).resolves.toEqual([]);
  });
});
