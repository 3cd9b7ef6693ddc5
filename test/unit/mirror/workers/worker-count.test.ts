import { describe, expect, it } from 'vitest';
import { restartDelay, workerCount } from '../../../../src/mirror/workers/worker-count.js';

describe('workerCount', () => {
  it('a number is taken as given; auto is one per available core, at least one', () => {
    expect(workerCount(3, () => 8)).toBe(3);
    expect(workerCount('auto', () => 8)).toBe(8);
    expect(workerCount('auto', () => 0)).toBe(1);
  });
});

describe('restartDelay', () => {
  it('a worker that died once is replaced at once; a crash loop backs off, up to 30 s; old exits are forgotten', () => {
    const now = 1_000_000;
    expect(restartDelay([now], now)).toBe(500);
    expect(restartDelay([now - 2000, now - 1000, now], now)).toBe(2000);
    expect(restartDelay(Array.from({ length: 20 }, (_, i) => now - i), now)).toBe(30_000);
    expect(restartDelay([now - 120_000, now - 90_000, now], now)).toBe(500);
  });
});
