import { startDockerRegistry, type DockerRegistry } from '../../test/helpers/docker-registry.js';
import { pushBigBlob, type BlobRef } from '../../test/helpers/images.js';
import type { BenchContext } from './context.js';
import { startMirrorProcess, type MirrorProcess } from './procs.js';
import { curlDownload } from './load.js';

/** Repository used everywhere: Docker Hub style, so the mirror maps it to its `docker.io` upstream. */
export const REPO = 'library/bench';

/** The upstream: a plain docker-registry holding the test content (distribution's storage, on this disk). */
export async function startUpstream(ctx: BenchContext, opts: { accessLog?: boolean } = {}): Promise<DockerRegistry> {
  return ctx.cleanup.add(await startDockerRegistry({ accessLog: opts.accessLog ?? false }));
}

/** Pushes generated blobs of the given sizes (seeds derived from `tag`), in order. */
export async function seedBlobs(upstream: DockerRegistry, sizes: number[], tag: string): Promise<BlobRef[]> {
  const out: BlobRef[] = [];
  for (const [i, size] of sizes.entries()) out.push(await pushBigBlob(upstream.url, REPO, size, `${tag}-${i}-${Date.now()}`));
  return out;
}

export interface Proxies {
  mirror: MirrorProcess;
  distribution: DockerRegistry;
}

/** The mirror and docker-registry in proxy mode, both in front of `upstream`, each with its own temp storage. */
export async function startProxies(ctx: BenchContext, upstream: DockerRegistry): Promise<Proxies> {
  const mirror = ctx.cleanup.add(
    await startMirrorProcess({ main: ctx.mirrorMain, upstreams: { 'docker.io': upstream.url }, ...(ctx.cpuProfDir ? { cpuProfDir: ctx.cpuProfDir } : {}) }),
  );
  const distribution = ctx.cleanup.add(await startDockerRegistry({ proxy: { remoteurl: upstream.url } }));
  return { mirror, distribution };
}

/** With `--workers N`: one more mirror, with `mirror.workers: N`, on the same upstream (a storage of its own). */
export async function startWorkersMirror(ctx: BenchContext, upstream: DockerRegistry): Promise<MirrorProcess | undefined> {
  if (!ctx.workers) return undefined;
  return ctx.cleanup.add(await startMirrorProcess({ main: ctx.mirrorMain, upstreams: { 'docker.io': upstream.url }, mirrorConfig: { workers: ctx.workers } }));
}

/** Waits until one mirror has committed every blob to its storage. */
export async function waitMirrorCached(mirror: MirrorProcess, blobs: BlobRef[], timeoutMs = 60_000): Promise<void> {
  const { stat } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const deadline = Date.now() + timeoutMs;
  for (const b of blobs) {
    const p = join(mirror.storage, mirrorBlobPath(b.digest));
    while ((await stat(p).catch(() => undefined))?.size !== b.size) {
      if (Date.now() > deadline) throw new Error(`${p} not cached after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export function blobUrl(base: string, digest: string): string {
  return `${base}/v2/${REPO}/blobs/${digest}`;
}

/** Path of a cached blob under the mirror's storage (layout: blobs/<alg>/<hex[0:2]>/<hex>), relative. */
export function mirrorBlobPath(digest: string): string {
  const [alg, hex] = digest.split(':') as [string, string];
  return `/blobs/${alg}/${hex.slice(0, 2)}/${hex}`;
}

/** Pulls each blob once through each proxy so that both hold it (cold fetches, not measured). */
export async function warm(proxies: Proxies, blobs: BlobRef[]): Promise<void> {
  for (const base of [proxies.mirror.url, proxies.distribution.url]) {
    await curlDownload(blobs.map((b) => blobUrl(base, b.digest)));
  }
}

/** Waits until both proxies have committed every blob to their storage (distribution commits after the last byte). */
export async function waitCached(proxies: Proxies, blobs: BlobRef[], timeoutMs = 60_000): Promise<void> {
  const { stat } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const deadline = Date.now() + timeoutMs;
  for (const b of blobs) {
    const [alg, hex] = b.digest.split(':') as [string, string];
    const paths = [
      join(proxies.mirror.storage, mirrorBlobPath(b.digest)),
      join(proxies.distribution.storageDir, 'docker/registry/v2/blobs', alg, hex.slice(0, 2), hex, 'data'),
    ];
    for (const p of paths) {
      for (;;) {
        const s = await stat(p).catch(() => undefined);
        if (s && s.size === b.size) break;
        if (Date.now() > deadline) throw new Error(`${p} not cached after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}
