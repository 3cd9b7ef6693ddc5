import type { Scenario } from '../lib/context.js';
import { blobUrl, seedBlobs, startProxies, startUpstream } from '../lib/fixtures.js';
import { curlDownload } from '../lib/load.js';
import { procMemory, resetPeak, sampleRss } from '../lib/procs.js';
import { emptyResult } from '../lib/report.js';
import { fmtBytes, fmtMB, fmtMs, fmtRatio, median, MiB } from '../lib/stats.js';

/** 8. Cold and warm blob time for growing sizes: cost should grow linearly, memory stay flat. */
export const scaling: Scenario = {
  id: '8',
  title: 'Scaling with blob size (cold and warm)',
  async run(ctx) {
    const sizes = ctx.quick ? [1 * MiB, 4 * MiB] : [1 * MiB, 16 * MiB, 256 * MiB, 1024 * MiB];
    const warmRuns = Math.min(ctx.runs, 3);
    const result = emptyResult(this.id, this.title);
    const upstream = await startUpstream(ctx);
    ctx.log(`pushing ${sizes.map(fmtBytes).join(', ')}`);
    const blobs = await seedBlobs(upstream, sizes, 's8');
    const proxies = await startProxies(ctx, upstream);
    const servers = [
      { name: 'mirrorgate', base: proxies.mirror.url, pid: proxies.mirror.pid },
      { name: 'distribution', base: proxies.distribution.url, pid: proxies.distribution.pid! },
    ];
    interface Row {
      coldMs: number;
      warmMs: number;
      coldPeak: number;
      warmPeak: number;
    }
    const rows = new Map<string, Row[]>(servers.map((s) => [s.name, []]));
    const timed = async (pid: number, url: string): Promise<{ ms: number; peak: number }> => {
      const canReset = resetPeak(pid);
      const sampler = sampleRss(pid, 20);
      const r = await curlDownload([url]);
      const sampled = sampler.stop();
      return { ms: r.transfers[0]!.ms, peak: Math.max(sampled, canReset ? procMemory(pid).hwm : 0) };
    };
    for (const blob of blobs) {
      for (const s of servers) {
        const url = blobUrl(s.base, blob.digest);
        const cold = await timed(s.pid, url);
        await new Promise((r) => setTimeout(r, 500)); // let distribution commit its copy
        const warm: { ms: number; peak: number }[] = [];
        for (let i = 0; i < warmRuns; i++) warm.push(await timed(s.pid, url));
        rows.get(s.name)!.push({ coldMs: cold.ms, warmMs: median(warm.map((w) => w.ms)), coldPeak: cold.peak, warmPeak: Math.max(...warm.map((w) => w.peak)) });
      }
      ctx.log(`${fmtBytes(blob.size)} done`);
    }
    const perMiB = (ms: number, bytes: number): string => `${(ms / (bytes / MiB)).toFixed(2)} ms`;
    for (const s of servers) {
      const rs = rows.get(s.name)!;
      result.tables.push({
        title: `${s.name}: one client (curl), cold = first request, warm = median of ${warmRuns}`,
        columns: ['size', 'cold', 'cold per MiB', 'warm', 'warm per MiB', 'peak RSS cold', 'peak RSS warm'],
        rows: sizes.map((size, i) => {
          const r = rs[i]!;
          return [fmtBytes(size), fmtMs(r.coldMs), perMiB(r.coldMs, size), fmtMs(r.warmMs), perMiB(r.warmMs, size), fmtMB(r.coldPeak), fmtMB(r.warmPeak)];
        }),
      });
    }
    // Linear: per-byte cost of the largest size close to that of the one before (small sizes are latency-bound).
    const m = rows.get('mirrorgate')!;
    const last = sizes.length - 1;
    const per = (ms: number, i: number): number => ms / sizes[i]!;
    const coldGrowth = per(m[last]!.coldMs, last) / per(m[last - 1]!.coldMs, last - 1);
    const warmGrowth = per(m[last]!.warmMs, last) / per(m[last - 1]!.warmMs, last - 1);
    const memGrowth = Math.max(m[last]!.coldPeak, m[last]!.warmPeak) - Math.max(m[0]!.coldPeak, m[0]!.warmPeak);
    result.checks.push(
      { name: `cold time per byte, ${fmtBytes(sizes[last]!)} vs ${fmtBytes(sizes[last - 1]!)}`, value: fmtRatio(coldGrowth), target: '<= 1.25x (linear)', met: coldGrowth <= 1.25 },
      { name: `warm time per byte, ${fmtBytes(sizes[last]!)} vs ${fmtBytes(sizes[last - 1]!)}`, value: fmtRatio(warmGrowth), target: '<= 1.25x (linear)', met: warmGrowth <= 1.25 },
      { name: `peak RSS growth, ${fmtBytes(sizes[0]!)} to ${fmtBytes(sizes[last]!)}`, value: fmtMB(memGrowth), target: '<= 50 MB (flat)', met: memGrowth <= 50e6 },
    );
    result.notes.push('Peak RSS is VmHWM reset before each request (VmRSS also sampled every 20 ms).');
    m.forEach((r, i) => Object.assign(result.metrics, { [`mirror cold ms ${sizes[i]}`]: r.coldMs, [`mirror warm ms ${sizes[i]}`]: r.warmMs, [`mirror peak rss ${sizes[i]}`]: Math.max(r.coldPeak, r.warmPeak) }));
    return result;
  },
};
