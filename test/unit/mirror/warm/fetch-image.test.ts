import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MEDIA_TYPES, type Descriptor } from '../../../../src/mirror/store/manifest-media.js';
import { fetchImage, type FetchedManifest, type ImageSource } from '../../../../src/mirror/warm/fetch-image.js';
import { selectPlatforms } from '../../../../src/mirror/warm/platforms.js';
import { warmKeep, warmTargets } from '../../../../src/mirror/warm/targets.js';

const digestOf = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const blob = (n: string, size: number) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${n.repeat(64).slice(0, 64)}`, size });

/** Manifests in memory, with a record of what was asked for. */
function source(manifests: Buffer[]): ImageSource & { blobs: string[]; asked: string[] } {
  const byDigest = new Map(manifests.map((m) => [digestOf(m), m]));
  const asked: string[] = [];
  const blobs: string[] = [];
  return {
    asked,
    blobs,
    async manifest(reference: string): Promise<FetchedManifest> {
      asked.push(reference);
      const bytes = reference === 'v1' ? manifests[0]! : byDigest.get(reference)!;
      return { digest: digestOf(bytes), mediaType: (JSON.parse(bytes.toString()) as { mediaType: string }).mediaType, bytes };
    },
    async blob(digest: string): Promise<void> {
      blobs.push(digest);
    },
  };
}

function image(arch: string, layers: ReturnType<typeof blob>[]): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config: blob(`c${arch.length}`, 10), layers, arch }));
}

describe('fetchImage', () => {
  const amd64 = image('amd64', [blob('a', 100), blob('b', 200)]);
  const arm64 = image('arm', [blob('a', 100), blob('d', 300)]);
  const s390x = image('s390x-', [blob('e', 1000)]);
  const entry = (m: Buffer, os: string, architecture: string, variant?: string) => ({
    mediaType: MEDIA_TYPES.ociManifest,
    digest: digestOf(m),
    size: m.length,
    platform: { os, architecture, ...(variant ? { variant } : {}) },
  });
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: [entry(s390x, 'linux', 's390x'), entry(amd64, 'linux', 'amd64'), entry(arm64, 'linux', 'arm64', 'v8'), { ...entry(amd64, 'unknown', 'unknown') }],
    }),
  );

  it('fetches the index, the wanted platforms and each of their blobs once', async () => {
    const src = source([index, amd64, arm64, s390x]);
    const got = await fetchImage(src, 'v1', ['linux/amd64', 'linux/arm64']);
    expect(got.platforms).toEqual(['linux/amd64', 'linux/arm64/v8']);
    expect(src.asked).toEqual(['v1', digestOf(amd64), digestOf(arm64)]);
    expect(src.blobs.sort()).toEqual([blob('a', 0), blob('b', 0), blob('d', 0), blob('c5', 0), blob('c3', 0)].map((b) => b.digest).sort());
    expect(got).toMatchObject({ digest: digestOf(index), manifests: 3, blobs: 5 });
    expect(got.size).toBe(index.length + amd64.length + arm64.length + 100 + 200 + 300 + 10 + 10);
  });

  it('fetches a single-platform image whatever the platforms, and refuses an index without them', async () => {
    const single = await fetchImage(source([s390x]), 'v1', ['linux/amd64']);
    expect(single).toMatchObject({ platforms: [], manifests: 1, blobs: 2 });
    await expect(fetchImage(source([index, amd64, arm64, s390x]), 'v1', ['windows/amd64', 'linux/arm/v7'])).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
  });

  it('selects by os and architecture, and by variant only when one is asked for', () => {
    const entries = (JSON.parse(index.toString()) as { manifests: Descriptor[] }).manifests;
    expect(selectPlatforms(entries, ['linux/arm64/v8']).map((e) => e.platform?.architecture)).toEqual(['arm64']);
    expect(selectPlatforms(entries, ['linux/arm64/v7'])).toEqual([]);
    expect(selectPlatforms(entries, ['unknown/unknown', 'linux/amd64', 'linux/amd64'])).toHaveLength(2);
  });
});

describe('warm targets', () => {
  it('resolve references the way a kubelet does, digest first, and name the cache units they keep', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(warmTargets(['nginx', 'registry-1.docker.io/bitnami/redis:7', `ghcr.io/org/app:v2@${digest}`])).toEqual([
      { image: 'nginx', repo: { upstream: 'docker.io', path: 'library/nginx' }, reference: 'latest', tag: 'latest' },
      { image: 'registry-1.docker.io/bitnami/redis:7', repo: { upstream: 'docker.io', path: 'bitnami/redis' }, reference: '7', tag: '7' },
      { image: `ghcr.io/org/app:v2@${digest}`, repo: { upstream: 'ghcr.io', path: 'org/app' }, reference: digest, digest, tag: 'v2' },
    ]);
    expect([...warmKeep(['nginx:1.27', `ghcr.io/org/app@${digest}`])]).toEqual(['docker.io/library/nginx:1.27', `ghcr.io/org/app@${digest}`]);
  });
});
