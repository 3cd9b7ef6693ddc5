import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/common/clock.js';
import { RewriteSummary } from '../../../src/webhook/rewrite-summary.js';
import { captureLogs } from '../../helpers/log-capture.js';

describe('the summary of rewritten pods', () => {
  it('writes one info line per interval with the counts since the previous line, and nothing for an idle interval', () => {
    const logs = captureLogs('info');
    const clock = new ManualClock();
    const summary = new RewriteSummary({ logger: logs.logger, clock, intervalMs: 60_000 });
    summary.add(2, false);
    summary.add(1, true);
    clock.advance(60_000);
    summary.flush();
    clock.advance(60_000);
    summary.flush();
    summary.add(5, false);
    clock.advance(30_000);
    summary.stop();
    expect(logs.lines().map(({ level, msg, pods, images, dryRuns, seconds }) => ({ level, msg, pods, images, dryRuns, seconds }))).toEqual([
      { level: 30, msg: 'pods rewritten', pods: 2, images: 3, dryRuns: 1, seconds: 60 },
      { level: 30, msg: 'pods rewritten', pods: 1, images: 5, dryRuns: 0, seconds: 90 },
    ]);
  });

  it('flushes on its own timer once started, and not after it is stopped', async () => {
    const logs = captureLogs('info');
    const summary = new RewriteSummary({ logger: logs.logger, clock: new ManualClock(), intervalMs: 20 });
    summary.start();
    summary.add(1, false);
    for (let i = 0; i < 100 && logs.lines().length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(logs.lines()).toHaveLength(1);
    summary.stop();
    summary.add(1, false);
    await new Promise((r) => setTimeout(r, 60));
    expect(logs.lines()).toHaveLength(1);
  });
});
