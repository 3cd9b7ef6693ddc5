import { startCephRgw } from '../../test/helpers/ceph-rgw.js';
import { startDockerRegistry, type DockerRegistry } from '../../test/helpers/docker-registry.js';
import { startRedis } from '../../test/helpers/redis.js';
import { createBucket, listKeys, rgwClient } from '../../test/helpers/s3-bucket.js';
import type { Scenario } from '../lib/context.js';
import { blobUrl, REPO, seedBlobs } from '../lib/fixtures.js';
import { curlDownload } from '../lib/load.js';
import { startMirrorProcess, type MirrorProcess } from '../lib/procs.js';
import { emptyResult } from '../lib/report.js';
import { fmtBytes, fmtMiBps, fmtMs, fmtRatio, median, MiB } from '../lib/stats.js';

const BUCKET = 'bench';

/**
 * 10. Object storage: a 256 MiB blob through the mirror on a one-node Ceph RGW (streamed, and answered with a
 * redirect), against Debian's docker-registry in proxy mode with its `s3` driver on the same gateway; then a
 * herd of 30 clients spread over three mirror replicas sharing the bucket and one Redis, on one cold blob.
 */
export const objectStorage: Scenario = {
  id: '10',
  title: 'Object storage (Ceph RGW): cold and warm 256 MiB blob, mirror vs distribution s3 driver; herd over replicas',
  async run(ctx) {
    const size = ctx.quick ? 8 * MiB : 256 * MiB;
    const runs = Math.min(ctx.runs, 3);
    const result = emptyResult(this.id, this.title);
    ctx.log('starting Ceph (mon, OSD, RGW), Redis and the upstream');
    const rgw = ctx.cleanup.add(await startCephRgw({ osdBytes: 40 * 1024 ** 3 }));
    const s3 = rgwClient(rgw);
    ctx.cleanup.add(() => s3.destroy());
    await createBucket(s3, BUCKET);
    const redis = ctx.cleanup.add(await startRedis());
    const upstream = ctx.cleanup.add(await startDockerRegistry({ accessLog: true }));
    const s3Config = (prefix: string, extra: Record<string, unknown> = {}) => ({
      endpoint: rgw.endpoint,
      region: rgw.region,
      bucket: BUCKET,
      prefix,
      forcePathStyle: true,
      accessKeyId: { value: rgw.accessKeyId },
      secretAccessKey: { value: rgw.secretAccessKey },
      ...extra,
    });
    const mirror = async (prefix: string, extra: Record<string, unknown> = {}, redisUrl?: string): Promise<MirrorProcess> =>
      ctx.cleanup.add(
        await startMirrorProcess({
          main: ctx.mirrorMain,
          upstreams: { 'docker.io': upstream.url },
          mirrorConfig: { storage: { path: '/tmp/mirrorgate-bench-unused', s3: s3Config(prefix, extra) }, cache: { gcInterval: 0 }, ...(redisUrl ? { redis: { url: redisUrl, keyPrefix: `${prefix}:` } } : {}) },
        }),
      );
    const distribution = async (root: string, redirect: boolean): Promise<DockerRegistry> =>
      ctx.cleanup.add(
        await startDockerRegistry({
          proxy: { remoteurl: upstream.url },
          s3: { endpoint: rgw.endpoint, region: rgw.region, bucket: BUCKET, accessKey: rgw.accessKeyId, secretKey: rgw.secretAccessKey, rootDirectory: `/${root}`, redirect },
        }),
      );

    const times = new Map<string, number[]>();
    const record = (name: string, ms: number): void => void times.set(name, [...(times.get(name) ?? []), ms]);
    for (let i = 0; i < runs; i++) {
      ctx.log(`run ${i + 1}/${runs}: pushing a ${fmtBytes(size)} blob to the upstream`);
      const [blob] = await seedBlobs(upstream, [size], `s10-${i}`);
      // Fresh prefixes each run: every first GET is cold.
      const streamed = await mirror(`m${i}/`);
      const redirecting = await mirror(`m${i}/`, { redirect: true });
      const dist = await distribution(`d${i}`, false);
      const distRedirect = await distribution(`d${i}`, true);
      const get = async (name: string, base: string, follow = false): Promise<void> => {
        const r = await curlDownload([blobUrl(base, blob!.digest)], { followRedirects: follow });
        if (r.transfers[0]!.bytes !== size) throw new Error(`${name}: ${r.transfers[0]!.bytes} bytes`);
        record(name, r.makespanMs);
      };
      const order = i % 2 === 0 ? ['mirror', 'dist'] : ['dist', 'mirror'];
      for (const who of order) {
        if (who === 'mirror') await get('mirrorgate, cold (streamed while stored)', streamed.url);
        else await get('distribution s3, cold', dist.url);
      }
      // Both commit to the bucket after the last byte: warm reads start once the objects are there.
      const hex = blob!.digest.slice('sha256:'.length);
      for (const key of [`m${i}/blobs/sha256/${hex}`, `d${i}/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`]) {
        await waitFor(async () => (await listKeys(s3, BUCKET, key)).length === 1);
      }
      for (const who of order) {
        if (who === 'mirror') {
          await get('mirrorgate, warm, streamed', streamed.url);
          await get('mirrorgate, warm, 307 to the gateway', redirecting.url, true);
        } else {
          await get('distribution s3, warm, streamed', dist.url);
          await get('distribution s3, warm, 307 to the gateway', distRedirect.url, true);
        }
      }
      for (const p of [streamed, redirecting]) await p.stop();
      for (const d of [dist, distRedirect]) await d.stop();
    }
    const base = median(times.get('distribution s3, warm, streamed')!);
    result.tables.push({
      title: `one ${fmtBytes(size)} blob by curl, median of ${runs} runs (cold: fresh bucket prefix each run); ratios against distribution's warm streamed GET`,
      columns: ['path', 'time', 'throughput', 'runs (min - max)', 'time / distribution warm streamed'],
      rows: [...times].map(([name, xs]) => [name, fmtMs(median(xs)), fmtMiBps(size / (median(xs) / 1000)), `${fmtMs(Math.min(...xs))} - ${fmtMs(Math.max(...xs))}`, fmtRatio(median(xs) / base)]),
    });

    ctx.log('herd: 30 clients over three replicas on one cold blob');
    const herdSize = ctx.quick ? 4 * MiB : 64 * MiB;
    const [herdBlob] = await seedBlobs(upstream, [herdSize], 's10-herd');
    const replicas = [await mirror('herd/', {}, redis.url), await mirror('herd/', {}, redis.url), await mirror('herd/', {}, redis.url)];
    const before = upstreamGets(upstream, herdBlob!.digest);
    const herd = await curlDownload(Array.from({ length: 30 }, (_, i) => blobUrl(replicas[i % 3]!.url, herdBlob!.digest)));
    const gets = upstreamGets(upstream, herdBlob!.digest) - before;
    result.tables.push({
      title: `herd: 30 clients at once, 10 per replica, three replicas on one bucket and one Redis, one cold ${fmtBytes(herdSize)} blob`,
      columns: ['upstream GETs of the blob', 'every client got the whole blob', 'makespan'],
      rows: [[String(gets), String(herd.transfers.every((t) => t.bytes === herdSize)), fmtMs(herd.makespanMs)]],
    });
    result.metrics.herdUpstreamGets = gets;
    result.notes.push(
      'Everything on one 2-core machine: the gateway (one OSD on bluestore over a sparse file), the mirror, distribution and curl share the cores, so the figures compare paths, not hardware.',
      'Redirect rows: curl -L follows the 307 to a presigned URL and reads the object from the gateway itself.',
    );
    return result;
  },
};

/** Successful GETs of the blob in the upstream's access log. */
function upstreamGets(upstream: DockerRegistry, digest: string): number {
  return upstream.logs().split('\n').filter((l) => l.includes(`"GET /v2/${REPO}/blobs/${digest}`) && / 200 /.test(l)).length;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}
