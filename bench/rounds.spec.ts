import type { Pipeline } from './options.js';
import { roundOrder } from './rounds.js';

describe('the loopback rounds', () => {
  const all: Pipeline[] = ['raw', 'packaging', 'naive'];

  it('run the raw copy and packaging next to each other, in turn first, and the naive pipeline after them', () => {
    expect([0, 1, 2, 3].map((round) => roundOrder(all, round))).toEqual([
      ['raw', 'packaging', 'naive'],
      ['packaging', 'raw', 'naive'],
      ['raw', 'packaging', 'naive'],
      ['packaging', 'raw', 'naive'],
    ]);
  });

  it('let the raw copy and packaging follow the naive pipeline equally often over two rounds', () => {
    const sequence = [0, 1, 2].flatMap((round) => roundOrder(all, round));
    const after = (pipeline: Pipeline) => sequence.filter((name, i) => name === pipeline && sequence[i - 1] === 'naive').length;

    expect(after('raw')).toBe(1);
    expect(after('packaging')).toBe(1);
  });

  it('keep a selection of pipelines as it is', () => {
    expect(roundOrder(['naive'], 1)).toEqual(['naive']);
    expect(roundOrder(['packaging', 'raw'], 0)).toEqual(['raw', 'packaging']);
  });
});
