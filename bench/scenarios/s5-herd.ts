import type { Scenario } from '../lib/context.js';
import { blobUrl, seedBlobs, startProxies, startUpstream, REPO } from '../lib/fixtures.js';
import { curlDownload } from '../lib/load.js';
import { emptyResult } from '../lib/report.js';
import { fmtBytes, fmtMs, fmtRatio, median, MiB } from '../lib/stats.js';

/** 5. Thundering herd: many clients ask for the same cold blob at once. Upstream GETs, slowest client. */
export const herd: Scenario = {
  id: '5',
  title: 'Thundering herd (many clients, one cold blob)',
  async run(ctx) {
    const clients = ctx.quick ? 5 : 50;
    const size = ctx.quick ? 1 * MiB : 100 * MiB;
    const runs = Math.min(ctx.runs, 3);
    const result = emptyResult(this.id, this.title);
    const upstream = await startUpstream(ctx, { accessLog: true });
    const [blob] = await seedBlobs(upstream, [size], 's5');
    const path = `/v2/${REPO}/blobs/${blob!.digest}`;
    const upstreamGets = (): number => upstream.logs().split('\n').filter((l) => l.includes(`"GET ${path} `)).length;

    const names = ['mirrorgate', 'distribution (proxy)'] as const;
    const single = new Map<string, number[]>(names.map((n) => [n, []]));
    const slowest = new Map<string, number[]>(names.map((n) => [n, []]));
    const gets = new Map<string, number[]>(names.map((n) => [n, []]));
    /** The same herd again once the blob is cached: what the cold herd is measured against. */
    const warm = new Map<string, number[]>(names.map((n) => [n, []]));
    for (let i = 0; i < runs; i++) {
      for (const mode of ['single', 'herd'] as const) {
        // Fresh, empty proxies for every measurement: the blob is cold in both.
        const proxies = await startProxies(ctx, upstream);
        const order = i % 2 === 0 ? names : ([...names].reverse() as typeof names[number][]);
        for (const name of order) {
          const base = name === 'mirrorgate' ? proxies.mirror.url : proxies.distribution.url;
          const before = upstreamGets();
          const r = await curlDownload(Array<string>(mode === 'single' ? 1 : clients).fill(blobUrl(base, blob!.digest)));
          if (r.transfers.some((t) => t.bytes !== size)) throw new Error(`${name}: a transfer was short`);
          if (mode === 'single') single.get(name)!.push(r.makespanMs);
          else {
            slowest.get(name)!.push(r.makespanMs);
            // The access log line is written when the upstream's answer ends; give it a moment.
            await new Promise((res) => setTimeout(res, 300));
            gets.get(name)!.push(upstreamGets() - before);
            const again = await curlDownload(Array<string>(clients).fill(blobUrl(base, blob!.digest)));
            if (again.transfers.some((t) => t.bytes !== size)) throw new Error(`${name}: a warm transfer was short`);
            warm.get(name)!.push(again.makespanMs);
          }
        }
        await proxies.mirror.stop();
        await proxies.distribution.stop();
      }
    }
    result.tables.push({
      title: `${clients} clients, one cold ${fmtBytes(size)} blob, curl --parallel, median of ${runs} runs (fresh caches each time)`,
      columns: ['server', 'upstream GETs', 'one cold client', 'slowest of the herd', 'slowest / one client', 'slowest of the warm herd', 'cold herd / warm herd'],
      rows: names.map((n) => [
        n,
        `${median(gets.get(n)!)} (max ${Math.max(...gets.get(n)!)})`,
        fmtMs(median(single.get(n)!)),
        fmtMs(median(slowest.get(n)!)),
        fmtRatio(median(slowest.get(n)!) / median(single.get(n)!)),
        fmtMs(median(warm.get(n)!)),
        fmtRatio(median(slowest.get(n)!) / median(warm.get(n)!)),
      ]),
    });
    const mGets = Math.max(...gets.get('mirrorgate')!);
    const ratio = median(slowest.get('mirrorgate')!) / median(single.get('mirrorgate')!);
    const coldWarm = median(slowest.get('mirrorgate')!) / median(warm.get('mirrorgate')!);
    result.checks.push(
      { name: 'upstream GETs for the herd (mirror)', value: String(mGets), target: '1', met: mGets === 1 },
      { name: 'slowest herd client / one cold client (mirror)', value: fmtRatio(ratio), target: '<= 1.3x', met: ratio <= 1.3 },
      { name: 'slowest of the cold herd / slowest of the warm herd (mirror)', value: fmtRatio(coldWarm), target: '<= 1.2x', met: coldWarm <= 1.2 },
    );
    result.notes.push(
      `The herd moves ${fmtBytes(clients * size)} to the clients; the one-client time is the floor only for a single download, the target asks the herd to finish close to it.`,
      'Upstream GETs are counted from the upstream registry\'s access log.',
      'The warm herd is the same clients again on the same server right after the cold herd, the blob now cached.',
      `Cold herd / warm herd per run (mirror): ${slowest.get('mirrorgate')!.map((c, i) => fmtRatio(c / warm.get('mirrorgate')![i]!)).join(', ')}.`,
    );
    Object.assign(result.metrics, {
      clients,
      sizeBytes: size,
      mirrorUpstreamGets: mGets,
      distributionUpstreamGets: median(gets.get('distribution (proxy)')!),
      mirrorSingleMs: median(single.get('mirrorgate')!),
      mirrorSlowestMs: median(slowest.get('mirrorgate')!),
      distributionSingleMs: median(single.get('distribution (proxy)')!),
      distributionSlowestMs: median(slowest.get('distribution (proxy)')!),
      mirrorWarmSlowestMs: median(warm.get('mirrorgate')!),
      distributionWarmSlowestMs: median(warm.get('distribution (proxy)')!),
    });
    return result;
  },
};
