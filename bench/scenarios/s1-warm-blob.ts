import type { Scenario } from '../lib/context.js';
import { blobUrl, mirrorBlobPath, seedBlobs, startProxies, startUpstream, startWorkersMirror, waitCached, waitMirrorCached, warm } from '../lib/fixtures.js';
import { curlDownload, undiciDownload } from '../lib/load.js';
import { cpuSeconds, processTree, startFileServer, startNginx } from '../lib/procs.js';
import { emptyResult } from '../lib/report.js';
import { fmtBytes, fmtMiBps, fmtRatio, median, MiB } from '../lib/stats.js';

/**
 * 1. One client downloads one cached blob: the mirror vs docker-registry (proxy mode), nginx (sendfile) and a bare
 * Node server streaming the same file (the embedded mirror's floor: same runtime, no registry work).
 */
export const warmBlob: Scenario = {
  id: '1',
  title: 'Warm blob throughput (one client, one cached blob)',
  async run(ctx) {
    const size = ctx.quick ? 4 * MiB : 256 * MiB;
    const result = emptyResult(this.id, this.title);
    const upstream = await startUpstream(ctx);
    const [blob] = await seedBlobs(upstream, [size], 's1');
    const proxies = await startProxies(ctx, upstream);
    await warm(proxies, [blob!]);
    await waitCached(proxies, [blob!]);
    const workers = await startWorkersMirror(ctx, upstream);
    if (workers) {
      await curlDownload([blobUrl(workers.url, blob!.digest)]);
      await waitMirrorCached(workers, [blob!]);
    }
    const nginx = ctx.cleanup.add(await startNginx(proxies.mirror.storage));
    const bare = ctx.cleanup.add(await startFileServer(proxies.mirror.storage));

    const servers = [
      { name: 'mirrorgate', url: blobUrl(proxies.mirror.url, blob!.digest), pid: proxies.mirror.pid as number | undefined },
      { name: 'distribution (proxy)', url: blobUrl(proxies.distribution.url, blob!.digest), pid: proxies.distribution.pid },
      { name: 'nginx (sendfile)', url: nginx.url + mirrorBlobPath(blob!.digest), pid: undefined },
      { name: 'bare Node (stream)', url: bare.url + mirrorBlobPath(blob!.digest), pid: bare.pid as number | undefined },
      // CPU of the primary and every worker together.
      ...(workers ? [{ name: `mirrorgate (${ctx.workers} workers)`, url: blobUrl(workers.url, blob!.digest), pid: workers.pid, tree: true }] : []),
    ];
    const cpuOf = (s: { pid: number | undefined; tree?: boolean }): number => (s.pid ? (s.tree ? processTree(s.pid) : [s.pid]).reduce((n, p) => n + cpuSeconds(p), 0) : 0);
    const tput = new Map<string, number[]>(servers.map((s) => [s.name, []]));
    const serverCpu = new Map<string, number[]>(servers.map((s) => [s.name, []]));
    const clientCpu = new Map<string, number[]>(servers.map((s) => [s.name, []]));
    // One unmeasured pass each (page cache, connection set-up), then `runs` rounds in rotating order.
    for (const s of servers) await curlDownload([s.url]);
    for (let i = 0; i < ctx.runs; i++) {
      for (let j = 0; j < servers.length; j++) {
        const s = servers[(i + j) % servers.length]!;
        const cpu0 = cpuOf(s);
        const r = await curlDownload([s.url]);
        const t = r.transfers[0]!;
        if (t.bytes !== size) throw new Error(`${s.name}: got ${t.bytes} bytes, expected ${size}`);
        tput.get(s.name)!.push(t.bytes / (t.ms / 1000));
        clientCpu.get(s.name)!.push(r.clientCpu / (t.ms / 1000));
        if (s.pid) serverCpu.get(s.name)!.push((cpuOf(s) - cpu0) / (t.ms / 1000));
      }
    }
    // Cross-check with another client: undici in this process.
    const undici = new Map<string, number>();
    for (const s of [servers[0]!, servers[2]!]) {
      const r = await undiciDownload(s.url);
      undici.set(s.name, r.bytes / (r.ms / 1000));
    }

    const m = median(tput.get('mirrorgate')!);
    const d = median(tput.get('distribution (proxy)')!);
    const n = median(tput.get('nginx (sendfile)')!);
    const b = median(tput.get('bare Node (stream)')!);
    const pct = (xs: number[]): string => (xs.length ? `${Math.round(median(xs) * 100)}%` : 'n/a');
    result.tables.push({
      title: `${fmtBytes(size)} blob, curl, median of ${ctx.runs} runs`,
      columns: ['server', 'throughput', 'runs (min - max)', 'mirrorgate / server', 'server CPU (of one core)', 'client CPU'],
      rows: servers.map((s) => {
        const xs = tput.get(s.name)!;
        return [
          s.name,
          fmtMiBps(median(xs)),
          `${fmtMiBps(Math.min(...xs))} - ${fmtMiBps(Math.max(...xs))}`,
          s.name === 'mirrorgate' ? '1.00x' : fmtRatio(m / median(xs)),
          pct(serverCpu.get(s.name)!),
          pct(clientCpu.get(s.name)!),
        ];
      }),
    });
    result.checks.push(
      { name: 'throughput vs distribution', value: fmtRatio(m / d), target: '>= 1.2x', met: m / d >= 1.2 },
      { name: 'throughput vs nginx', value: fmtRatio(m / n), target: '>= 0.9x', met: m / n >= 0.9 },
      { name: 'embedded default vs a bare Node server streaming the file', value: fmtRatio(m / b), target: '>= 0.95x', met: m / b >= 0.95 },
    );
    result.notes.push(
      `Cross-check with undici as the client (one run): mirrorgate ${fmtMiBps(undici.get('mirrorgate')!)}, nginx ${fmtMiBps(undici.get('nginx (sendfile)')!)}.`,
      'Load generator: curl serves nginx faster than any other server here, so it is not what limits the others.',
    );
    if (workers) {
      const w = median(tput.get(`mirrorgate (${ctx.workers} workers)`)!);
      result.checks.push({ name: `throughput vs distribution, ${ctx.workers} workers`, value: fmtRatio(w / d), target: '>= 1.2x', met: w / d >= 1.2 });
      Object.assign(result.metrics, { workers: ctx.workers, workersBps: w });
    }
    Object.assign(result.metrics, { sizeBytes: size, mirrorBps: m, distributionBps: d, nginxBps: n, bareNodeBps: b, ratioDistribution: m / d, ratioNginx: m / n, ratioBareNode: m / b });
    return result;
  },
};
