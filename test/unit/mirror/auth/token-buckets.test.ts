import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/common/clock.js';
import { TokenBuckets } from '../../../../src/mirror/auth/token-buckets.js';

function buckets(capacity: number, maxKeys = 100) {
  const clock = new ManualClock();
  return { clock, b: new TokenBuckets({ capacity, refillMs: 60_000, maxKeys, clock }) };
}

describe('TokenBuckets', () => {
  it('lets a key take `capacity` tokens, then says how long until the next one', () => {
    const { b, clock } = buckets(3);
    for (let i = 0; i < 3; i++) {
      expect(b.waitMs('k')).toBe(0);
      b.take('k');
    }
    expect(b.waitMs('k')).toBe(20_000);
    expect(b.waitMs('other')).toBe(0);
    clock.advance(19_999);
    expect(b.waitMs('k')).toBe(1);
    clock.advance(1);
    expect(b.waitMs('k')).toBe(0);
  });

  it('refills evenly over the window, never above capacity, and forgets full buckets', () => {
    const { b, clock } = buckets(2);
    b.take('k');
    b.take('k');
    clock.advance(10 * 60_000);
    b.take('k');
    b.take('k');
    expect(b.waitMs('k')).toBeGreaterThan(0); // a long pause did not bank more than two
    b.give('k');
    b.give('k');
    expect(b.size).toBe(0);
  });

  it('gives a token back', () => {
    const { b } = buckets(1);
    b.take('k');
    expect(b.waitMs('k')).toBe(60_000);
    b.give('k');
    expect(b.waitMs('k')).toBe(0);
    b.give('unknown'); // nothing to give back to: a no-op
    expect(b.size).toBe(0);
  });

  it('tracks at most maxKeys keys, forgetting the one that took a token longest ago', () => {
    const { b } = buckets(1, 3);
    for (const k of ['a', 'b', 'c']) b.take(k);
    b.take('a'); // a is now the most recent
    for (let i = 0; i < 1000; i++) b.take(`flood-${i}`);
    expect(b.size).toBe(3);
    expect(b.waitMs('flood-999')).toBeGreaterThan(0);
    expect(b.waitMs('b')).toBe(0);
  });

  it('reports the first refusal since the last take only', () => {
    const { b } = buckets(1);
    b.take('k');
    expect(b.refuse('k')).toBe(true);
    expect(b.refuse('k')).toBe(false);
    b.take('k');
    expect(b.refuse('k')).toBe(true);
    expect(b.refuse('never-took')).toBe(false);
  });
});
