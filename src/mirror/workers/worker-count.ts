import { availableParallelism } from 'node:os';

/** How many worker processes `mirror.workers` asks for: `auto` is one per core this process may use. */
export function workerCount(setting: number | 'auto', cores: () => number = availableParallelism): number {
  return setting === 'auto' ? Math.max(1, cores()) : setting;
}

/** The first replacement of a dead worker waits this long; each further exit within a minute doubles it. */
const RESTART_BASE_MS = 500;
const RESTART_MAX_MS = 30_000;
export const RESTART_WINDOW_MS = 60_000;

/**
 * How long to wait before replacing a worker, given when workers exited lately (a crash loop backs off, a
 * worker that died once is back at once).
 */
export function restartDelay(exitTimes: readonly number[], now: number): number {
  const recent = exitTimes.filter((t) => now - t < RESTART_WINDOW_MS).length;
  return Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** Math.max(0, recent - 1));
}
