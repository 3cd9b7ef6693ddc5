import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { startAccelFront } from '../../test/helpers/nginx-accel.js';
import type { Scenario } from '../lib/context.js';
import { blobUrl, mirrorBlobPath, seedBlobs, startProxies, startUpstream, waitCached, warm } from '../lib/fixtures.js';
import { request } from 'undici';
import { curlDownload } from '../lib/load.js';
import { cpuSeconds, startMirrorProcess, startNginx } from '../lib/procs.js';
import { emptyResult } from '../lib/report.js';
import { fmtBytes, fmtMiBps, fmtRatio, median, MiB, percentile } from '../lib/stats.js';

const PREFIX = '/_mirrorgate/blobs/';

/**
 * 12. One client downloads one cached blob through the production front of docs/deploy.md: nginx proxying
 * to a mirror with `storage.accelRedirect`, which answers `X-Accel-Redirect` and lets nginx send the file.
 * Against nginx serving the same file directly (the floor), the embedded mirror and distribution.
 */
export const accelRedirect: Scenario = {
  id: '12',
  title: 'Warm blob through nginx with X-Accel-Redirect (one client, one cached blob)',
  async run(ctx) {
    const size = ctx.quick ? 4 * MiB : 256 * MiB;
    const result = emptyResult(this.id, this.title);
    const upstream = await startUpstream(ctx);
    const [blob] = await seedBlobs(upstream, [size], 's12');
    const proxies = await startProxies(ctx, upstream);
    const accelMirror = ctx.cleanup.add(
      await startMirrorProcess({ main: ctx.mirrorMain, upstreams: { 'docker.io': upstream.url }, storageConfig: { accelRedirect: { prefix: PREFIX } } }),
    );
    const front = ctx.cleanup.add(await startAccelFront({ mirror: accelMirror.url, storagePath: accelMirror.storage, prefix: PREFIX }));
    await warm(proxies, [blob!]);
    // Cold through the front: the mirror streams it (nginx proxies), then it is stored.
    await curlDownload([blobUrl(front.url, blob!.digest)]);
    await waitCached(proxies, [blob!]);
    await waitStored(join(accelMirror.storage, mirrorBlobPath(blob!.digest)), size);
    const nginx = ctx.cleanup.add(await startNginx(accelMirror.storage));

    const servers = [
      { name: 'nginx + mirrorgate (X-Accel-Redirect)', url: blobUrl(front.url, blob!.digest), pids: [...withWorkers(front.pid), accelMirror.pid] },
      { name: 'nginx (sendfile)', url: nginx.url + mirrorBlobPath(blob!.digest), pids: withWorkers(nginx.pid) },
      { name: 'mirrorgate (embedded)', url: blobUrl(proxies.mirror.url, blob!.digest), pids: [proxies.mirror.pid] },
      { name: 'distribution (proxy)', url: blobUrl(proxies.distribution.url, blob!.digest), pids: [proxies.distribution.pid] },
    ];
    const [accel, floor, embedded, distribution] = servers.map((s) => s.name) as [string, string, string, string];
    const tput = new Map<string, number[]>(servers.map((s) => [s.name, []]));
    const serverCpu = new Map<string, number[]>(servers.map((s) => [s.name, []]));
    const clientCpu = new Map<string, number[]>(servers.map((s) => [s.name, []]));
    // Debian's registry helper may not know its pid; a missing one counts nothing.
    const cpu = (pids: (number | undefined)[]): number => pids.reduce<number>((sum, pid) => sum + (pid ? cpuSeconds(pid) : 0), 0);
    // One unmeasured pass each (page cache, connection set-up), then `runs` rounds in rotating order.
    for (const s of servers) await curlDownload([s.url]);
    for (let i = 0; i < ctx.runs; i++) {
      for (let j = 0; j < servers.length; j++) {
        const s = servers[(i + j) % servers.length]!;
        const cpu0 = cpu(s.pids);
        const r = await curlDownload([s.url]);
        const t = r.transfers[0]!;
        if (t.bytes !== size) throw new Error(`${s.name}: got ${t.bytes} bytes, expected ${size}`);
        tput.get(s.name)!.push(t.bytes / (t.ms / 1000));
        clientCpu.get(s.name)!.push(r.clientCpu / (t.ms / 1000));
        serverCpu.get(s.name)!.push((cpu(s.pids) - cpu0) / (t.ms / 1000));
      }
    }

    // The fixed cost of a request (auth, scoping and the file lookup in the mirror, one more hop): one-byte
    // ranges, so that the bytes take no time.
    const latency = new Map<string, number>();
    for (const s of servers.slice(0, 3)) {
      const ms: number[] = [];
      for (let i = 0; i < (ctx.quick ? 5 : 200); i++) {
        const t0 = performance.now();
        const res = await request(s.url, { headers: { range: 'bytes=0-0' } });
        await res.body.dump();
        if (res.statusCode !== 206) throw new Error(`${s.name}: a one-byte range answered ${res.statusCode}`);
        ms.push(performance.now() - t0);
      }
      latency.set(s.name, median(ms));
    }

    const a = median(tput.get(accel)!);
    const n = median(tput.get(floor)!);
    const e = median(tput.get(embedded)!);
    const d = median(tput.get(distribution)!);
    // The machine is shared: the ratio of two transfers taken one right after the other moves far less with
    // the load than the ratio of the medians. In the rotation above each server always follows the same
    // one (the front follows distribution), so the pairs get their own rounds, in the order A B B A ...:
    // each of the two follows the other as often as itself.
    const pairs: number[] = [];
    for (let i = 0; i < ctx.runs * 2; i++) {
      const order = (i >> 1) % 2 === i % 2 ? [servers[0]!, servers[1]!] : [servers[1]!, servers[0]!];
      const bps = new Map<string, number>();
      for (const s of order) {
        const t = (await curlDownload([s.url])).transfers[0]!;
        if (t.bytes !== size) throw new Error(`${s.name}: got ${t.bytes} bytes, expected ${size}`);
        bps.set(s.name, t.bytes / (t.ms / 1000));
      }
      pairs.push(bps.get(accel)! / bps.get(floor)!);
    }
    const paired = median(pairs);
    const pairedEmbedded = median(tput.get(embedded)!.map((x, i) => x / tput.get(floor)![i]!));
    const pct = (xs: number[]): string => `${Math.round(median(xs) * 100)}%`;
    result.tables.push({
      title: `${fmtBytes(size)} blob, curl, median of ${ctx.runs} runs`,
      columns: ['server', 'throughput', 'runs (min - max)', 'nginx + mirrorgate / server', 'server CPU (of one core)', 'client CPU'],
      rows: servers.map((s) => {
        const xs = tput.get(s.name)!;
        return [
          s.name,
          fmtMiBps(median(xs)),
          `${fmtMiBps(Math.min(...xs))} - ${fmtMiBps(Math.max(...xs))}`,
          s.name === accel ? '1.00x' : fmtRatio(a / median(xs)),
          pct(serverCpu.get(s.name)!),
          pct(clientCpu.get(s.name)!),
        ];
      }),
    });
    result.checks.push(
      { name: 'nginx + mirrorgate vs nginx (sendfile), ratio of medians', value: fmtRatio(a / n), target: '>= 0.9x', met: a / n >= 0.9 },
      { name: `nginx + mirrorgate vs nginx (sendfile), median of ${pairs.length} back-to-back pairs`, value: fmtRatio(paired), target: '>= 0.9x', met: paired >= 0.9 },
    );
    result.notes.push(
      `Time for a one-byte range (median of ${ctx.quick ? 5 : 200}, undici, one connection): ${[...latency].map(([k, v]) => `${k} ${v.toFixed(2)} ms`).join(', ')}.`,
      `Back-to-back pairs, nginx + mirrorgate / nginx (sendfile): quartiles ${[25, 50, 75].map((q) => fmtRatio(percentile(pairs, q))).join(' / ')}.`,
      `Median of per-round ratios in the rotation, the embedded mirror vs nginx (sendfile): ${fmtRatio(pairedEmbedded)}.`,
      `The embedded mirror in the same run: ${fmtRatio(e / n)} nginx (sendfile); nginx + mirrorgate is ${fmtRatio(a / e)} the embedded mirror.`,
      'Server CPU of nginx + mirrorgate is both together (the nginx master and its one worker, and the mirror).',
    );
    Object.assign(result.metrics, { sizeBytes: size, accelBps: a, nginxBps: n, mirrorBps: e, distributionBps: d, ratioNginx: a / n, ratioEmbedded: a / e, pairedRatioNginx: paired, pairedRatioEmbeddedNginx: pairedEmbedded, accelRangeMs: latency.get(accel)!, nginxRangeMs: latency.get(floor)!, mirrorRangeMs: latency.get(embedded)! });
    return result;
  },
};

/** An nginx master and its workers (the worker sends the bytes, so its CPU is what counts). */
function withWorkers(master: number): number[] {
  const children = readFileSync(`/proc/${master}/task/${master}/children`, 'utf8').trim();
  return [master, ...(children ? children.split(' ').map(Number) : [])];
}

/** Waits until the mirror has committed the blob (the cache write ends just after the last byte went out). */
async function waitStored(path: string, size: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await stat(path).catch(() => undefined);
    if (s && s.size === size) return;
    if (Date.now() > deadline) throw new Error(`${path} not stored after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
