import { describe, expect, it } from 'vitest';
import { DownloadBudget } from '../../../src/mirror/proxy/download-budget.js';

const MiB = 1024 * 1024;

describe('DownloadBudget', () => {
  it('gives each download the most window and writes while few run, shares the totals when many do, never below the least', () => {
    const budget = new DownloadBudget(4 * MiB, 4, 32 * MiB, 1 * MiB, 32);
    const windows = Array.from({ length: 8 }, () => budget.open(0));
    expect([budget.share, budget.writes]).toEqual([4 * MiB, 4]);
    windows.push(...Array.from({ length: 8 }, () => budget.open(0)));
    expect([budget.share, budget.writes]).toEqual([2 * MiB, 2]);
    windows.push(...Array.from({ length: 48 }, () => budget.open(0)));
    expect([budget.share, budget.writes]).toEqual([1 * MiB, 1]);
    for (const w of windows.splice(8)) budget.close(w);
    expect([budget.share, budget.writes]).toEqual([4 * MiB, 4]);
    budget.close(windows[0]!);
    budget.close(windows[0]!); // twice: no effect
    expect(budget.share).toBe(4 * MiB);
  });

  it('shrinks the windows already open: what is over the new share and stored goes at the next push', () => {
    const budget = new DownloadBudget(4 * MiB, 4, 8 * MiB, 1 * MiB, 32);
    const first = budget.open(0);
    for (let i = 0; i < 8; i++) first.push(Buffer.alloc(MiB), (i + 1) * MiB);
    expect(first.bytes).toBe(4 * MiB);
    const others = Array.from({ length: 7 }, () => budget.open(0));
    first.push(Buffer.alloc(MiB), 9 * MiB);
    expect(first.bytes).toBe(1 * MiB);
    // Bytes not stored yet are never dropped, whatever the share.
    first.push(Buffer.alloc(MiB), 9 * MiB);
    first.push(Buffer.alloc(MiB), 9 * MiB);
    expect(first.bytes).toBe(2 * MiB); // the two not stored, nothing else
    for (const w of others) budget.close(w);
    expect(budget.share).toBe(4 * MiB);
  });
});
