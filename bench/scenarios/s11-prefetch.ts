import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { systemClock } from '../../src/common/clock.js';
import { silentLogger } from '../../src/common/logger.js';
import { configSchema } from '../../src/config/schema.js';
import { generateBundle, LOCAL_IPS } from '../../src/webhook/certs.js';
import { ConfigStore } from '../../src/webhook/config-store.js';
import { WebhookMetrics } from '../../src/webhook/metrics.js';
import { startWebhook } from '../../src/webhook/runtime.js';
import { MemoryTlsSource } from '../../src/webhook/tls-source.js';
import { ALL_MANIFEST_TYPES, pushImage } from '../../test/helpers/images.js';
import { skopeoCopy } from '../../test/helpers/skopeo.js';
import { makeTempDir } from '../../test/helpers/tmp.js';
import type { BenchContext, Scenario } from '../lib/context.js';
import { blobUrl, REPO, startUpstream } from '../lib/fixtures.js';
import { curlDownload } from '../lib/load.js';
import { startMirrorProcess } from '../lib/procs.js';
import { emptyResult } from '../lib/report.js';
import { fmtBytes, fmtMiBps, fmtMs, fmtRatio, median, MiB } from '../lib/stats.js';
import { startThrottleProxy } from '../lib/throttle-proxy.js';

/** What one pod start measured, from the admission review's answer. */
interface PodStart {
  /** The client's pull, from its start to its last byte (what the kubelet waits for). */
  pullMs: number;
  /** From the review's answer to the pull's last byte: scheduling delay plus the pull. */
  totalMs: number;
  /** Bytes that crossed the throttled link during the run (one download of the image, or more). */
  upstreamBytes: number;
}

/** A client pulling `<host>/<REPO>:<tag>` into `dir` (a scratch directory it may fill). */
interface PullClient {
  name: string;
  pull(host: string, tag: string, dir: string): Promise<void>;
}

/** The bytes a kubelet receives: the manifest, then every blob at once (curl, bodies to /dev/null). */
const curlPull: PullClient = {
  name: 'curl: the manifest, then every blob at once',
  async pull(host, tag) {
    const res = await request(`http://${host}/v2/${REPO}/manifests/${tag}`, { headers: { accept: ALL_MANIFEST_TYPES } });
    const manifest = (await res.body.json()) as { config: { digest: string }; layers: { digest: string }[] };
    if (res.statusCode !== 200) throw new Error(`manifest: HTTP ${res.statusCode}`);
    await curlDownload([manifest.config, ...manifest.layers].map((d) => blobUrl(`http://${host}`, d.digest)));
  },
};

/** A whole pull as a container runtime does it: every digest verified, the image written to disk. */
const skopeoPull: PullClient = {
  name: 'skopeo copy to dir: (verifies and writes the image)',
  async pull(host, tag, dir) {
    await skopeoCopy(`docker://${host}/${REPO}:${tag}`, `dir:${join(dir, 'image')}`, { throwOnError: true, timeoutMs: 600_000 });
  },
};

function podReview(uid: string, image: string): unknown {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'bench',
      operation: 'CREATE',
      dryRun: false,
      object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'app', namespace: 'bench' }, spec: { containers: [{ name: 'app', image }] } },
    },
  };
}

/**
 * One pod start on a cold mirror: the webhook (in this process, over TLS) admits a pod with the image, the
 * "kubelet" (skopeo) starts pulling the rewritten image `delayMs` later, the time scheduling takes.
 */
async function podStart(
  ctx: BenchContext,
  opts: { upstream: string; tag: string; prefetch: boolean; delayMs: number; throttle: { bytes: number }; client: PullClient },
): Promise<PodStart> {
  const mirror = await startMirrorProcess({ main: ctx.mirrorMain, upstreams: { 'docker.io': opts.upstream } });
  const bundle = generateBundle({ now: Date.now(), validityMs: 86_400_000, dnsNames: ['localhost'], ipAddresses: LOCAL_IPS });
  const config = configSchema.parse({
    upstreams: { 'docker.io': { url: opts.upstream } },
    webhook: { mirrorHost: mirror.host, mirrorProbe: { enabled: false }, injectPullSecret: false, prefetch: { enabled: opts.prefetch, url: `${mirror.url}/v2/_mirrorgate/prefetch` } },
  });
  const metrics = new WebhookMetrics();
  const logger = silentLogger();
  const webhook = await startWebhook({
    configStore: new ConfigStore({}, { logger, metrics }, config),
    logger,
    clock: systemClock,
    metrics,
    listen: { host: '127.0.0.1', port: 0 },
    tls: new MemoryTlsSource({ cert: bundle.cert, key: bundle.key }),
  });
  const agent = new Agent({ connect: { ca: bundle.caCert, servername: 'localhost' } });
  const out = await makeTempDir('mirrorgate-bench-prefetch-');
  try {
    const bytes0 = opts.throttle.bytes;
    const res = await request(`https://127.0.0.1:${webhook.port}/mutate`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(podReview(`bench-${Date.now()}`, `${REPO}:${opts.tag}`)),
    });
    const answer = (await res.body.json()) as { response: { patch?: string } };
    const admitted = performance.now();
    const patch = JSON.parse(Buffer.from(answer.response.patch ?? '', 'base64').toString() || '[]') as Array<{ path: string; value: unknown }>;
    const image = patch.find((op) => op.path === '/spec/containers/0/image')?.value;
    if (image !== `${mirror.host}/${REPO}:${opts.tag}`) throw new Error(`the webhook did not rewrite the image: ${JSON.stringify(answer)}`);
    await sleep(opts.delayMs);
    const started = performance.now();
    await opts.client.pull(mirror.host, opts.tag, out.path);
    const done = performance.now();
    return { pullMs: done - started, totalMs: done - admitted, upstreamBytes: opts.throttle.bytes - bytes0 };
  } finally {
    await agent.close();
    await webhook.close();
    await mirror.stop();
    await rm(out.path, { recursive: true, force: true });
  }
}

/**
 * 11. Pod start with a cold image: the webhook tells the mirror which images an admitted pod will pull, so the
 * download has a head start of the scheduling delay; against the same pod start without prefetch.
 */
export const prefetch: Scenario = {
  id: '11',
  title: 'Pod start with a cold image: prefetch on admission vs none',
  async run(ctx) {
    const layers = ctx.quick ? [MiB, MiB, MiB] : [100, 80, 60, 40, 20].map((m) => m * MiB);
    const bytesPerSecond = ctx.quick ? 4 * MiB : 100 * MiB;
    const delayMs = ctx.quick ? 500 : 2000;
    const runs = Math.min(ctx.runs, 3);
    const result = emptyResult(this.id, this.title);
    const registry = await startUpstream(ctx);
    const tag = 'v1';
    ctx.log(`pushing a ${layers.length}-layer image of ${fmtBytes(layers.reduce((a, b) => a + b, 0))}`);
    const pushed = await pushImage(registry.url, REPO, tag, { layers, format: 'docker', seed: `s11-${Date.now()}` });
    const size = pushed.layers.reduce((a, l) => a + l.size, 0) + pushed.config.size;
    const throttle = ctx.cleanup.add(await startThrottleProxy(registry.url, bytesPerSecond));

    const modes = [
      { name: 'prefetch on admission', prefetch: true },
      { name: 'no prefetch', prefetch: false },
    ];
    const without = 'no prefetch';
    for (const client of [curlPull, skopeoPull]) {
      const starts = new Map<string, PodStart[]>(modes.map((m) => [m.name, []]));
      for (let i = 0; i < runs; i++) {
        for (let j = 0; j < modes.length; j++) {
          const mode = modes[(i + j) % modes.length]!;
          ctx.log(`${client.name}, run ${i + 1}/${runs}: ${mode.name}`);
          starts.get(mode.name)!.push(await podStart(ctx, { upstream: throttle.url, tag, prefetch: mode.prefetch, delayMs, throttle, client }));
        }
      }
      const pull = (name: string): number => median(starts.get(name)!.map((s) => s.pullMs));
      const total = (name: string): number => median(starts.get(name)!.map((s) => s.totalMs));
      result.tables.push({
        title: `${client.name}; image of ${fmtBytes(size)} (${layers.length} layers), upstream link ${fmtMiBps(bytesPerSecond)}, pull ${fmtMs(delayMs)} after the review's answer, fresh mirror each time, median of ${runs} runs`,
        columns: ['pod start', 'pull: first request to last byte', 'runs (min - max)', 'review answer to last byte', 'upstream bytes', 'pull time, no prefetch / this'],
        rows: modes.map((m) => {
          const xs = starts.get(m.name)!;
          return [
            m.name,
            fmtMs(pull(m.name)),
            `${fmtMs(Math.min(...xs.map((s) => s.pullMs)))} - ${fmtMs(Math.max(...xs.map((s) => s.pullMs)))}`,
            fmtMs(total(m.name)),
            fmtBytes(median(xs.map((s) => s.upstreamBytes))),
            fmtRatio(pull(without) / pull(m.name)),
          ];
        }),
      });
      const ratio = pull(without) / pull('prefetch on admission');
      const key = client === curlPull ? 'curl' : 'skopeo';
      Object.assign(result.metrics, {
        [`${key}PrefetchPullMs`]: pull('prefetch on admission'),
        [`${key}NoPrefetchPullMs`]: pull(without),
        [`${key}PrefetchTotalMs`]: total('prefetch on admission'),
        [`${key}NoPrefetchTotalMs`]: total(without),
        [`${key}PullRatio`]: ratio,
      });
      if (client === curlPull) result.checks.push({ name: 'time to last byte of the pull, no prefetch / prefetch', value: fmtRatio(ratio), target: '>= 2.0x', met: ratio >= 2 });
    }
    result.notes.push(
      `Upstream: docker-registry behind a TCP proxy that paces every answer on one shared ${fmtMiBps(bytesPerSecond)} link (bench/lib/throttle-proxy.ts). The webhook runs in this process; the mirror is a fresh process with an empty cache for every pod start.`,
      `Prefetch gives the download a head start of the scheduling delay (${fmtMs(delayMs)}): the pull then waits only for what is left of the upstream transfer, plus reading what is cached. From the review's answer both include the delay; the last column compares the pulls, the part the mirror can shorten.`,
      'The check is on the bytes (curl). skopeo also hashes and writes every layer to its disk, a cost that is the same with and without prefetch and bounds its ratio (a warm pull of this image with it takes about as long as the upstream transfer here).',
    );
    Object.assign(result.metrics, { imageBytes: size, bytesPerSecond, delayMs });
    return result;
  },
};
