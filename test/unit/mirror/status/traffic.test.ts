import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/common/clock.js';
import { MirrorMetrics } from '../../../../src/mirror/metrics.js';
import { TrafficHistory } from '../../../../src/mirror/status/traffic.js';

const MINUTE = 60_000;

describe('TrafficHistory', () => {
  it('counts lookups per minute, from the cache or sent upstream, the current minute last', () => {
    const clock = new ManualClock(100 * MINUTE + 5_000);
    const t = new TrafficHistory(clock, 5);
    for (const r of ['hit', 'hit', 'revalidated', 'stale', 'joined', 'miss', 'changed', 'uncached']) t.record(r);
    clock.advance(2 * MINUTE);
    t.record('hit');
    const s = t.series();
    expect(s.start).toBe(98 * MINUTE);
    expect(s.stepMs).toBe(MINUTE);
    expect(s.cache).toEqual([0, 0, 5, 0, 1]);
    expect(s.upstream).toEqual([0, 0, 3, 0, 0]);
  });

  it('forgets minutes older than the ring, reusing their slots', () => {
    const clock = new ManualClock(0);
    const t = new TrafficHistory(clock, 3);
    t.record('hit');
    clock.advance(3 * MINUTE); // the same slot, three minutes on
    t.record('miss');
    expect(t.series()).toMatchObject({ cache: [0, 0, 0], upstream: [0, 0, 1] });
    clock.advance(10 * MINUTE);
    expect(t.series()).toMatchObject({ cache: [0, 0, 0], upstream: [0, 0, 0] });
  });

  it('is fed by the cache lookup counter', async () => {
    const metrics = new MirrorMetrics({ clock: new ManualClock() });
    metrics.cacheLookup('blob', 'hit');
    metrics.cacheLookup('tag', 'miss');
    const s = metrics.traffic.series();
    expect([s.cache.at(-1), s.upstream.at(-1)]).toEqual([1, 1]);
    expect((await metrics.cache.get()).values.map((v) => [v.labels.kind, v.labels.result, v.value])).toEqual([
      ['blob', 'hit', 1],
      ['tag', 'miss', 1],
    ]);
  });
});
