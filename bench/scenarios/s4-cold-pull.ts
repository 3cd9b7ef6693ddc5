import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Scenario } from '../lib/context.js';
import { REPO, startProxies, startUpstream } from '../lib/fixtures.js';
import { emptyResult } from '../lib/report.js';
import { fmtBytes, fmtMs, fmtRatio, median, MiB } from '../lib/stats.js';
import { pushImage } from '../../test/helpers/images.js';
import { skopeoCopy } from '../../test/helpers/skopeo.js';
import { makeTempDir } from '../../test/helpers/tmp.js';

/** 4. Cold pull of a 3-layer ~300 MiB image with skopeo: through the mirror vs straight from the upstream. */
export const coldPull: Scenario = {
  id: '4',
  title: 'Cold pull of a 3-layer image with skopeo copy',
  async run(ctx) {
    const layer = ctx.quick ? 1 * MiB : 100 * MiB;
    const runs = Math.min(ctx.runs, 3);
    const result = emptyResult(this.id, this.title);
    const upstream = await startUpstream(ctx);
    ctx.log(`pushing a 3 x ${fmtBytes(layer)} image`);
    const image = await pushImage(upstream.url, REPO, 'v1', { layers: [layer, layer, layer], format: 'docker', seed: `s4-${Date.now()}` });
    const total = image.layers.reduce((a, l) => a + l.size, 0) + image.config.size;
    const out = ctx.cleanup.add(await makeTempDir('mirrorgate-bench-pull-'));

    const times = new Map<string, number[]>([
      ['direct from the upstream', []],
      ['mirrorgate (cold)', []],
      ['distribution (proxy, cold)', []],
    ]);
    const pull = async (name: string, host: string): Promise<void> => {
      const dest = join(out.path, 'image');
      await rm(dest, { recursive: true, force: true });
      const t0 = performance.now();
      await skopeoCopy(`docker://${host}/${REPO}:v1`, `dir:${dest}`, { throwOnError: true, timeoutMs: 300_000 });
      times.get(name)!.push(performance.now() - t0);
      await rm(dest, { recursive: true, force: true });
    };
    await pull('direct from the upstream', upstream.host); // unmeasured: page cache and skopeo's first start
    times.get('direct from the upstream')!.length = 0;
    for (let i = 0; i < runs; i++) {
      // Fresh proxies (empty caches) every run, so each pull through them is cold.
      const proxies = await startProxies(ctx, upstream);
      const order: [string, string][] = [
        ['direct from the upstream', upstream.host],
        ['mirrorgate (cold)', proxies.mirror.host],
        ['distribution (proxy, cold)', proxies.distribution.host],
      ];
      for (let j = 0; j < order.length; j++) {
        const [name, host] = order[(i + j) % order.length]!;
        await pull(name, host);
      }
      await proxies.mirror.stop();
      await proxies.distribution.stop();
    }
    const direct = median(times.get('direct from the upstream')!);
    result.tables.push({
      title: `image of ${fmtBytes(total)} (3 layers of ${fmtBytes(layer)}), skopeo copy to dir:, median of ${runs} runs`,
      columns: ['source', 'time', 'runs (min - max)', 'time / direct'],
      rows: [...times].map(([name, xs]) => [name, fmtMs(median(xs)), `${fmtMs(Math.min(...xs))} - ${fmtMs(Math.max(...xs))}`, fmtRatio(median(xs) / direct)]),
    });
    const m = median(times.get('mirrorgate (cold)')!);
    result.checks.push({ name: 'cold pull through the mirror vs direct', value: fmtRatio(m / direct), target: '<= 1.1x', met: m / direct <= 1.1 });
    result.notes.push('skopeo pulls the layers in parallel and verifies every digest; the time includes its start-up and the manifest requests.');
    Object.assign(result.metrics, { imageBytes: total, directMs: direct, mirrorMs: m, distributionMs: median(times.get('distribution (proxy, cold)')!) });
    return result;
  },
};
