import type { Pipeline } from './options.js';

/**
 * The order of the loopback pipelines in one round. The raw copy and packaging, the pair whose ratios carry
 * the targets, run next to each other, first one then the other in turn, so that a slow or fast spell of the
 * machine falls on both; the naive pipeline (the heaviest: temporary files on disk, their removal) runs after
 * the pair, so that each of the pair follows it equally often over an odd number of rounds (with an even
 * number, packaging follows it once more than the raw copy). Other pipelines keep their place after these.
 */
export function roundOrder(pipelines: Pipeline[], round: number): Pipeline[] {
  const pair = (['raw', 'packaging'] as Pipeline[]).filter((pipeline) => pipelines.includes(pipeline));
  if (round % 2 === 1) pair.reverse();
  return [...pair, ...pipelines.filter((pipeline) => !pair.includes(pipeline))];
}
