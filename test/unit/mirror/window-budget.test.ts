import { describe, expect, it } from 'vitest';
import { WindowBudget } from '../../../src/mirror/proxy/window-budget.js';

const MiB = 1024 * 1024;

describe('WindowBudget', () => {
  it('gives each download the most while few run, shares the total when many do, never below the least', () => {
    const budget = new WindowBudget(4 * MiB, 32 * MiB, 1 * MiB);
    const windows = Array.from({ length: 8 }, () => budget.open(0));
    expect(budget.share).toBe(4 * MiB);
    windows.push(...Array.from({ length: 8 }, () => budget.open(0)));
    expect(budget.share).toBe(2 * MiB);
    windows.push(...Array.from({ length: 48 }, () => budget.open(0)));
    expect(budget.share).toBe(1 * MiB);
    for (const w of windows.splice(8)) budget.close(w);
    expect(budget.share).toBe(4 * MiB);
    budget.close(windows[0]!);
    budget.close(windows[0]!); // twice: no effect
    expect(budget.share).toBe(4 * MiB);
  });

  it('shrinks the windows already open: what is over the new share and stored goes at the next push', () => {
    const budget = new WindowBudget(4 * MiB, 8 * MiB, 1 * MiB);
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
