import type { Scenario } from '../lib/context.js';
import { startProxies, startUpstream } from '../lib/fixtures.js';
import { rate, undiciRate } from '../lib/load.js';
import { MANIFEST_CASES, manifestUrl, measureManifests, seedImage, warmManifests } from '../lib/manifests.js';
import { startNginx } from '../lib/procs.js';
import { emptyResult } from '../lib/report.js';
import { fmtMs, fmtRate, fmtRatio } from '../lib/stats.js';

/** 3. Cached manifests, HEAD and GET by tag (within the freshness window) and by digest, 64 connections. */
export const manifests: Scenario = {
  id: '3',
  title: 'Warm manifest requests (64 connections)',
  async run(ctx) {
    const connections = ctx.quick ? 8 : 64;
    const durationMs = ctx.quick ? 1000 : 4000;
    const runs = Math.min(ctx.runs, 3);
    const result = emptyResult(this.id, this.title);
    const upstream = await startUpstream(ctx);
    const image = await seedImage(upstream.url);
    const proxies = await startProxies(ctx, upstream);
    const targets = [
      { name: 'mirrorgate', base: proxies.mirror.url },
      { name: 'distribution (proxy)', base: proxies.distribution.url },
    ];
    for (const t of targets) await warmManifests(t, image);
    const res = await measureManifests(ctx, targets, image, { connections, durationMs, runs });
    const m = res.get('mirrorgate')!;
    const d = res.get('distribution (proxy)')!;
    result.tables.push({
      title: `${connections} connections, ${durationMs / 1000} s per measurement, undici client, median of ${runs} runs`,
      columns: ['request', 'mirrorgate req/s', 'p50 / p99', 'distribution req/s', 'p50 / p99', 'ratio'],
      rows: MANIFEST_CASES.map((c) => {
        const a = m.get(c.name)!;
        const b = d.get(c.name)!;
        return [c.name, fmtRate(a.rps), `${fmtMs(a.p50Ms)} / ${fmtMs(a.p99Ms)}`, fmtRate(b.rps), `${fmtMs(b.p50Ms)} / ${fmtMs(b.p99Ms)}`, fmtRatio(a.rps / b.rps)];
      }),
    });
    for (const c of MANIFEST_CASES) {
      const r = m.get(c.name)!.rps / d.get(c.name)!.rps;
      result.checks.push({ name: `${c.name} vs distribution`, value: fmtRatio(r), target: '>= 2x', met: r >= 2 });
      result.metrics[`mirror ${c.name} rps`] = m.get(c.name)!.rps;
      result.metrics[`distribution ${c.name} rps`] = d.get(c.name)!.rps;
    }

    // Load generator check: the same tool against nginx serving the same manifest bytes as a static file, and
    // its own CPU use during the mirror's run.
    const nginx = ctx.cleanup.add(await startNginx(proxies.mirror.storage));
    const [alg, hex] = image.digest.split(':') as [string, string];
    const floor = await undiciRate({ url: `${nginx.url}/manifests/${alg}/${hex.slice(0, 2)}/${hex}`, method: 'GET', connections, durationMs });
    const mg = m.get('GET by digest')!;
    const cross = await rate({ url: manifestUrl(proxies.mirror.url, image, 'digest'), method: 'GET', connections, durationMs });
    const crossD = await rate({ url: manifestUrl(proxies.distribution.url, image, 'digest'), method: 'GET', connections, durationMs });
    result.notes.push(
      `Load generator check: the undici client against nginx serving the same manifest file: ${fmtRate(floor.rps)} (${fmtRatio(floor.rps / mg.rps)} the mirror's GET by digest); it used ${Math.round((mg.clientCpu / mg.seconds) * 100)}% of a core during the mirror's GET by digest run.`,
      `Cross-check with ${cross.tool === 'wrk' ? 'wrk (a C client, lighter than undici)' : 'a second undici run (wrk is not installed; bench/setup.sh installs it)'} on GET by digest: mirrorgate ${fmtRate(cross.rps)} (p99 ${fmtMs(cross.p99Ms)}), distribution ${fmtRate(crossD.rps)} (p99 ${fmtMs(crossD.p99Ms)}): ${fmtRatio(cross.rps / crossD.rps)}.`,
      'distribution asks its upstream on every tag request (a HEAD), the mirror answers tags within the freshness window (default 10 min) from its cache.',
    );
    result.metrics.nginxRps = floor.rps;
    return result;
  },
};
