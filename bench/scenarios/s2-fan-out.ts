import type { Scenario } from '../lib/context.js';
import { blobUrl, mirrorBlobPath, seedBlobs, startProxies, startUpstream, startWorkersMirror, waitCached, waitMirrorCached, warm } from '../lib/fixtures.js';
import { curlDownload } from '../lib/load.js';
import { cpuSeconds, processTree, procMemory, resetPeak, sampleRss, sampleTreePss, sampleTreeRss, startNginx } from '../lib/procs.js';
import { emptyResult } from '../lib/report.js';
import { fmtBytes, fmtMB, fmtMiBps, fmtRatio, median, MiB } from '../lib/stats.js';

/** 2. 32 clients, each downloading a different cached 64 MiB blob, all at once. Aggregate throughput, peak RSS. */
export const fanOut: Scenario = {
  id: '2',
  title: 'Warm blob fan-out (32 clients, a different cached blob each)',
  async run(ctx) {
    const clients = ctx.quick ? 4 : 32;
    const size = ctx.quick ? 1 * MiB : 64 * MiB;
    const result = emptyResult(this.id, this.title);
    const upstream = await startUpstream(ctx);
    ctx.log(`pushing ${clients} x ${fmtBytes(size)}`);
    const blobs = await seedBlobs(upstream, Array<number>(clients).fill(size), 's2');
    const proxies = await startProxies(ctx, upstream);
    ctx.log('warming both caches');
    await warm(proxies, blobs);
    await waitCached(proxies, blobs);
    const workers = await startWorkersMirror(ctx, upstream);
    if (workers) {
      await curlDownload(blobs.map((b) => blobUrl(workers.url, b.digest)));
      await waitMirrorCached(workers, blobs);
    }
    const workersName = `mirrorgate (${ctx.workers} workers)`;
    const nginx = ctx.cleanup.add(await startNginx(proxies.mirror.storage));

    const servers = [
      { name: 'mirrorgate', urls: blobs.map((b) => blobUrl(proxies.mirror.url, b.digest)), pid: proxies.mirror.pid as number | undefined },
      { name: 'distribution (proxy)', urls: blobs.map((b) => blobUrl(proxies.distribution.url, b.digest)), pid: proxies.distribution.pid },
      { name: 'nginx (sendfile)', urls: blobs.map((b) => nginx.url + mirrorBlobPath(b.digest)), pid: undefined },
      ...(workers ? [{ name: workersName, urls: blobs.map((b) => blobUrl(workers.url, b.digest)), pid: workers.pid, tree: true }] : []),
    ];
    const total = clients * size;
    const tput = new Map<string, number[]>(servers.map((s) => [s.name, []]));
    const peak = new Map<string, number[]>(servers.map((s) => [s.name, []]));
    const peakPss = new Map<string, number[]>(servers.map((s) => [s.name, []]));
    const slowest = new Map<string, number[]>(servers.map((s) => [s.name, []]));
    const clientCpu: number[] = [];
    for (const s of servers) await curlDownload(s.urls); // unmeasured pass
    for (let i = 0; i < ctx.runs; i++) {
      for (let j = 0; j < servers.length; j++) {
        const s = servers[(i + j) % servers.length]!;
        if ('tree' in s) {
          // The primary and every worker: memory and CPU of them all together.
          const pids = processTree(s.pid as number);
          const sampler = sampleTreeRss(pids, 20);
          const pss = sampleTreePss(pids, 50);
          const cpu0 = pids.reduce((n, p) => n + cpuSeconds(p), 0);
          const r = await curlDownload(s.urls);
          peak.get(s.name)!.push(sampler.stop());
          peakPss.get(s.name)!.push(pss.stop());
          if (r.transfers.some((t) => t.bytes !== size)) throw new Error(`${s.name}: a transfer was short`);
          tput.get(s.name)!.push(total / (r.makespanMs / 1000));
          slowest.get(s.name)!.push(r.makespanMs);
          result.metrics.workersCpuShare = (pids.reduce((n, p) => n + cpuSeconds(p), 0) - cpu0) / (r.makespanMs / 1000);
          continue;
        }
        // Peak RSS of this run only: reset VmHWM (and sample VmRSS too, in case the reset is not permitted).
        const canReset = s.pid ? resetPeak(s.pid) : false;
        const sampler = s.pid ? sampleRss(s.pid, 20) : undefined;
        const pss = s.pid ? sampleTreePss([s.pid], 50) : undefined;
        const cpu0 = s.pid ? cpuSeconds(s.pid) : 0;
        const r = await curlDownload(s.urls);
        const sampled = sampler?.stop() ?? 0;
        if (pss) peakPss.get(s.name)!.push(pss.stop());
        if (r.transfers.some((t) => t.bytes !== size)) throw new Error(`${s.name}: a transfer was short`);
        tput.get(s.name)!.push(total / (r.makespanMs / 1000));
        slowest.get(s.name)!.push(r.makespanMs);
        if (s.pid) peak.get(s.name)!.push(Math.max(sampled, canReset ? procMemory(s.pid).hwm : 0));
        if (s.name === 'mirrorgate') clientCpu.push(r.clientCpu / (r.makespanMs / 1000));
        if (s.pid && s.name === 'mirrorgate') result.metrics.mirrorCpuShare = (cpuSeconds(s.pid) - cpu0) / (r.makespanMs / 1000);
      }
    }
    const m = median(tput.get('mirrorgate')!);
    const d = median(tput.get('distribution (proxy)')!);
    const n = median(tput.get('nginx (sendfile)')!);
    const mPeak = Math.max(...peak.get('mirrorgate')!);
    result.tables.push({
      title: `${clients} clients x ${fmtBytes(size)} (${fmtBytes(total)} in all), one curl --parallel, median of ${ctx.runs} runs`,
      columns: ['server', 'aggregate throughput', 'slowest client', 'mirrorgate / server', 'peak RSS (largest run)', 'peak PSS (largest run)'],
      rows: servers.map((s) => [
        s.name,
        fmtMiBps(median(tput.get(s.name)!)),
        `${(median(slowest.get(s.name)!) / 1000).toFixed(2)} s`,
        s.name === 'mirrorgate' ? '1.00x' : fmtRatio(m / median(tput.get(s.name)!)),
        peak.get(s.name)!.length ? fmtMB(Math.max(...peak.get(s.name)!)) : 'n/a',
        peakPss.get(s.name)!.length ? fmtMB(Math.max(...peakPss.get(s.name)!)) : 'n/a',
      ]),
    });
    result.checks.push(
      { name: 'aggregate throughput vs distribution', value: fmtRatio(m / d), target: '>= 1.0x', met: m / d >= 1.0 },
      { name: 'mirror peak RSS', value: fmtMB(mPeak), target: '<= 200 MB', met: mPeak <= 200e6 },
    );
    if (workers) {
      const w = median(tput.get(workersName)!);
      const wPeak = Math.max(...peak.get(workersName)!);
      const wPss = Math.max(...peakPss.get(workersName)!);
      result.checks.push(
        { name: `aggregate throughput vs distribution, ${ctx.workers} workers`, value: fmtRatio(w / d), target: '>= 1.0x', met: w / d >= 1.0 },
        { name: `peak RSS, primary and ${ctx.workers} workers together (sum of RSS)`, value: fmtMB(wPeak), target: '<= 250 MB', met: wPeak <= 250e6 },
        { name: `peak memory, primary and ${ctx.workers} workers together (sum of PSS)`, value: fmtMB(wPss), target: '<= 250 MB', met: wPss <= 250e6 },
      );
      result.notes.push(
        `${workersName}: peak RSS is the sum over the primary and every worker of each one's VmHWM (reset before each run), at least the sum of VmRSS sampled every 20 ms; it counts the pages the processes share (the node binary, libraries) once per process. Peak PSS is the largest sum of their proportional set sizes sampled every 50 ms, which counts a shared page once in all.`,
      );
      Object.assign(result.metrics, { workers: ctx.workers, workersBps: w, workersPeakRssBytes: wPeak, workersPeakPssBytes: wPss });
    }
    result.notes.push(
      `Client (curl) CPU during the mirror's runs: ${Math.round(median(clientCpu) * 100)}% of one core; nginx was served ${fmtRatio(n / m)} faster by the same client.`,
      'Peak RSS is VmHWM reset before each run (and VmRSS sampled every 20 ms), so it excludes the warm-up downloads.',
    );
    Object.assign(result.metrics, { clients, sizeBytes: size, mirrorBps: m, distributionBps: d, nginxBps: n, mirrorPeakRssBytes: mPeak, distributionPeakRssBytes: Math.max(...peak.get('distribution (proxy)')!) });
    return result;
  },
};
