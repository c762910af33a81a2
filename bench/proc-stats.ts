import { readFileSync } from 'node:fs';

/**
 * Process figures read from Linux's /proc. The bench measures each pipeline in its own process, so these are
 * per-pipeline numbers; the s3rver child is read from outside, so its CPU is reported but never counted.
 */

/** USER_HZ: /proc reports CPU time in clock ticks, 100 a second on every mainstream Linux build. */
const CLOCK_TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) that another process has used so far; undefined when it cannot be read. */
export function cpuSecondsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: count the fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** This process's peak resident set (VmHWM): catches spikes that a sampler could miss between two samples. */
export function peakRssBytes(): number {
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (match) return Number(match[1]) * 1024;
  } catch {
    // Not Linux: the sampler's figure is all there is.
  }
  return 0;
}

/** Samples process.memoryUsage.rss() every `intervalMs` and keeps the maximum (the portable half of the peak). */
export function startRssSampler(intervalMs = 20): { stop(): number } {
  let max = process.memoryUsage.rss();
  const timer = setInterval(() => {
    max = Math.max(max, process.memoryUsage.rss());
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(max, process.memoryUsage.rss());
    },
  };
}
