import { createCipheriv, createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';

/**
 * Builds test images and pushes them over the real Distribution API (no external tools). Content is
 * deterministic: the same seed gives the same bytes, hence the same digests, in every run.
 */

export const MediaTypes = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

/** Every manifest media type, for an `Accept` header that keeps multi-arch images multi-arch. */
export const ALL_MANIFEST_TYPES = [
  MediaTypes.ociIndex,
  MediaTypes.ociManifest,
  MediaTypes.dockerManifestList,
  MediaTypes.dockerManifest,
].join(', ');

export type ImageFormat = 'docker' | 'oci';

export interface BlobRef {
  digest: string;
  size: number;
}

export interface Descriptor extends BlobRef {
  mediaType: string;
  artifactType?: string;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface PushedImage {
  repo: string;
  /** The tag it was pushed under, or undefined when pushed by digest only. */
  tag: string | undefined;
  /** `sha256:` of `manifestBytes`; the registry's `Docker-Content-Digest` agreed. */
  digest: string;
  mediaType: string;
  manifestBytes: Buffer;
  platform: Platform;
  config: BlobRef;
  layers: BlobRef[];
  /** The manifest's descriptor (for an index entry or a referrer's subject). */
  descriptor: Descriptor;
}

export interface PushedIndex {
  repo: string;
  tag: string | undefined;
  digest: string;
  mediaType: string;
  manifestBytes: Buffer;
  /** The children, in index order. */
  manifests: PushedImage[];
  descriptor: Descriptor;
}

export interface PushedArtifact {
  repo: string;
  digest: string;
  mediaType: string;
  artifactType: string;
  manifestBytes: Buffer;
  subject: Descriptor;
  layers: BlobRef[];
  /** The descriptor a referrers answer lists for it (with `artifactType` and `annotations`). */
  descriptor: Descriptor;
}

export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

// ---------------------------------------------------------------------------------------------------------
// Deterministic bytes: AES-128-CTR keystream keyed by the seed. Fast (GB/s), seekable (for Range checks).

function keyFor(seed: string | number): Buffer {
  return createHash('sha256').update(`mirrorgate-test:${seed}`).digest().subarray(0, 16);
}

function cipherAt(seed: string | number, offset: number): { update(b: Buffer): Buffer; skip: number } {
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(Math.floor(offset / 16)), 8);
  return Object.assign(createCipheriv('aes-128-ctr', keyFor(seed), iv), { skip: offset % 16 });
}

/** `length` pseudo-random bytes of the stream for `seed`, starting at `offset` (so ranges can be checked). */
export function generateBytes(seed: string | number, length: number, offset = 0): Buffer {
  const c = cipherAt(seed, offset);
  return c.update(Buffer.alloc(length + c.skip)).subarray(c.skip);
}

/** The same stream as `generateBytes`, in chunks, without holding it all in memory. */
export function* generateChunks(seed: string | number, size: number, chunkSize = 1 << 20, offset = 0): Generator<Buffer> {
  const c = cipherAt(seed, offset);
  if (c.skip > 0) c.update(Buffer.alloc(c.skip));
  const zeros = Buffer.alloc(Math.min(chunkSize, Math.max(size, 1)));
  for (let done = 0; done < size; ) {
    const n = Math.min(chunkSize, size - done);
    yield c.update(n === zeros.length ? zeros : zeros.subarray(0, n));
    done += n;
  }
}

/** Digest of `generateChunks(seed, size)` without pushing anything. */
export function generatedDigest(seed: string | number, size: number): string {
  const h = createHash('sha256');
  for (const chunk of generateChunks(seed, size, 4 << 20)) h.update(chunk);
  return `sha256:${h.digest('hex')}`;
}

// ---------------------------------------------------------------------------------------------------------
// Layers

/** Layers up to this size are real gzip'ed tarballs; larger ones are raw pseudo-random bytes. */
export const GZIP_TAR_MAX = 4 << 20;

/** A one-file ustar archive (file `name` holding `content`), as a layer's uncompressed form. */
export function tarOf(name: string, content: Uint8Array): Buffer {
  const header = Buffer.alloc(512);
  const put = (s: string, at: number, len: number): void => {
    header.write(s.slice(0, len), at, 'ascii');
  };
  const octal = (n: number, len: number): string => n.toString(8).padStart(len - 1, '0');
  put(name, 0, 100);
  put(octal(0o644, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(content.length, 12), 124, 12);
  put(octal(946_684_800, 12), 136, 12); // 2000-01-01, fixed for determinism
  put('        ', 148, 8);
  put('0', 156, 1);
  put('ustar\u000000', 257, 8);
  let sum = 0;
  for (const b of header) sum += b;
  put(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8);
  const pad = (512 - (content.length % 512)) % 512;
  return Buffer.concat([header, content, Buffer.alloc(pad), Buffer.alloc(1024)]);
}

interface BuiltLayer {
  bytes: Buffer;
  diffId: string;
}

/**
 * A layer of about `size` bytes. Up to GZIP_TAR_MAX it is an honest gzip'ed tarball holding one file of
 * `size` pseudo-random bytes (the blob is then a little larger than `size`: tar headers, gzip framing).
 * Above that, it is exactly `size` raw pseudo-random bytes labelled as a gzip layer: registries and
 * `skopeo copy ... dir:` do not look inside, and gzip'ing hundreds of MiB would only slow the tests.
 */
export function buildLayer(seed: string | number, size: number): BuiltLayer {
  const content = generateBytes(seed, size);
  if (size > GZIP_TAR_MAX) return { bytes: content, diffId: sha256(content) };
  const tar = tarOf(`layer-${String(seed).replace(/[^\w.-]/g, '_')}.bin`, content);
  return { bytes: gzipSync(tar, { level: 1 }), diffId: sha256(tar) };
}

// ---------------------------------------------------------------------------------------------------------
// HTTP

function base(url: string): string {
  return url.replace(/\/+$/, '');
}

async function expectStatus(
  res: { statusCode: number; body: { text(): Promise<string> } },
  ok: number[],
  what: string,
): Promise<void> {
  if (ok.includes(res.statusCode)) return;
  const text = await res.body.text().catch(() => '');
  throw new Error(`${what}: HTTP ${res.statusCode} ${text.slice(0, 500)}`);
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

async function startUpload(url: string, repo: string): Promise<URL> {
  const res = await request(`${base(url)}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await expectStatus(res, [202], `start upload to ${repo}`);
  await res.body.dump();
  const location = header(res.headers, 'location');
  if (!location) throw new Error(`start upload to ${repo}: no Location`);
  return new URL(location, `${base(url)}/`);
}

/** Pushes one blob (monolithic: POST, then PUT `?digest=` with the bytes). Returns its digest and size. */
export async function pushBlob(url: string, repo: string, bytes: Uint8Array): Promise<BlobRef> {
  const digest = sha256(bytes);
  const location = await startUpload(url, repo);
  location.searchParams.set('digest', digest);
  const res = await request(location, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) },
    body: bytes,
  });
  await expectStatus(res, [201], `push blob ${digest} to ${repo}`);
  await res.body.dump();
  const got = header(res.headers, 'docker-content-digest');
  if (got !== undefined && got !== digest) throw new Error(`registry stored ${got}, expected ${digest}`);
  return { digest, size: bytes.length };
}

/**
 * Pushes `sizeBytes` of generated bytes without holding them in memory: POST, then PATCH parts of
 * `partSize` bytes (each streamed, with `Content-Range`), hashed as they go, then PUT `?digest=`.
 */
export async function pushBigBlob(
  url: string,
  repo: string,
  sizeBytes: number,
  seed: string | number,
  opts: { partSize?: number } = {},
): Promise<BlobRef> {
  const partSize = opts.partSize ?? 32 << 20;
  const hash = createHash('sha256');
  let location = await startUpload(url, repo);
  for (let start = 0; start < sizeBytes; start += partSize) {
    const n = Math.min(partSize, sizeBytes - start);
    const chunks = generateChunks(seed, n, 1 << 20, start);
    const body = Readable.from(
      (function* () {
        for (const chunk of chunks) {
          hash.update(chunk);
          yield chunk;
        }
      })(),
      { objectMode: false },
    );
    const res = await request(location, {
      method: 'PATCH',
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(n),
        'content-range': `${start}-${start + n - 1}`,
      },
      body,
    });
    await expectStatus(res, [202], `upload part at ${start} to ${repo}`);
    await res.body.dump();
    const next = header(res.headers, 'location');
    if (next) location = new URL(next, `${base(url)}/`);
  }
  const digest = `sha256:${hash.digest('hex')}`;
  location.searchParams.set('digest', digest);
  const res = await request(location, { method: 'PUT', headers: { 'content-length': '0' } });
  await expectStatus(res, [201], `finish upload of ${digest} to ${repo}`);
  await res.body.dump();
  return { digest, size: sizeBytes };
}

/** Pushes manifest bytes under `reference` (a tag or their digest) and checks the digest the registry reports. */
export async function pushManifest(
  url: string,
  repo: string,
  reference: string,
  bytes: Buffer,
  mediaType: string,
): Promise<string> {
  const digest = sha256(bytes);
  const res = await request(`${base(url)}/v2/${repo}/manifests/${reference}`, {
    method: 'PUT',
    headers: { 'content-type': mediaType },
    body: bytes,
  });
  await expectStatus(res, [201], `push manifest ${repo}:${reference}`);
  await res.body.dump();
  const got = header(res.headers, 'docker-content-digest');
  if (got !== undefined && got !== digest) throw new Error(`registry says ${got} for manifest ${digest}`);
  return digest;
}

/** Manifests are serialised with 3-space indentation, like distribution does, so bytes are not "canonical". */
function serialise(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value, null, 3));
}

export interface PushImageOptions {
  /** Layer sizes in bytes (see buildLayer for what "size" means for small and large layers). */
  layers: number[];
  format: ImageFormat;
  /** Seeds the content; different seeds give different digests. */
  seed: string | number;
  /** Default linux/amd64. */
  platform?: Platform;
}

/**
 * Pushes the layers, the config and the manifest of a single-platform image. `tag` null pushes the manifest
 * by digest only (as for an index's children).
 */
export async function pushImage(url: string, repo: string, tag: string | null, opts: PushImageOptions): Promise<PushedImage> {
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const docker = opts.format === 'docker';
  const layers: BlobRef[] = [];
  const diffIds: string[] = [];
  for (const [i, size] of opts.layers.entries()) {
    const built = buildLayer(`${opts.seed}/${platform.architecture}/layer${i}`, size);
    layers.push(await pushBlob(url, repo, built.bytes));
    diffIds.push(built.diffId);
  }
  const configJson = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    created: '2024-01-01T00:00:00Z',
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Labels: { 'org.mirrorgate.test.seed': String(opts.seed) },
    },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map((_, i) => ({ created: '2024-01-01T00:00:00Z', created_by: `test layer ${i}` })),
  };
  const config = await pushBlob(url, repo, Buffer.from(JSON.stringify(configJson)));
  const layerType = docker ? MediaTypes.dockerLayer : MediaTypes.ociLayer;
  const mediaType = docker ? MediaTypes.dockerManifest : MediaTypes.ociManifest;
  const manifest = {
    schemaVersion: 2,
    mediaType,
    config: { mediaType: docker ? MediaTypes.dockerConfig : MediaTypes.ociConfig, ...config },
    layers: layers.map((l) => ({ mediaType: layerType, ...l })),
  };
  const manifestBytes = serialise(manifest);
  const digest = await pushManifest(url, repo, tag ?? sha256(manifestBytes), manifestBytes, mediaType);
  return {
    repo,
    tag: tag ?? undefined,
    digest,
    mediaType,
    manifestBytes,
    platform,
    config,
    layers,
    descriptor: { mediaType, digest, size: manifestBytes.length, platform },
  };
}

/**
 * Pushes a Docker manifest list or an OCI index over `images` (already pushed to the same repo), each entry
 * with its platform. `tag` null pushes it by digest only.
 */
export async function pushIndex(
  url: string,
  repo: string,
  tag: string | null,
  images: PushedImage[],
  format: ImageFormat,
): Promise<PushedIndex> {
  for (const image of images) {
    if (image.repo !== repo) throw new Error(`pushIndex: ${image.digest} is in ${image.repo}, not ${repo}`);
  }
  const mediaType = format === 'docker' ? MediaTypes.dockerManifestList : MediaTypes.ociIndex;
  const index = {
    schemaVersion: 2,
    mediaType,
    manifests: images.map((i) => ({ mediaType: i.mediaType, digest: i.digest, size: i.manifestBytes.length, platform: i.platform })),
  };
  const manifestBytes = serialise(index);
  const digest = await pushManifest(url, repo, tag ?? sha256(manifestBytes), manifestBytes, mediaType);
  return {
    repo,
    tag: tag ?? undefined,
    digest,
    mediaType,
    manifestBytes,
    manifests: images,
    descriptor: { mediaType, digest, size: manifestBytes.length },
  };
}

/** linux/amd64 and linux/arm64 images (pushed by digest) under one index or manifest list tagged `tag`. */
export async function pushMultiArch(
  url: string,
  repo: string,
  tag: string | null,
  opts: { layers: number[]; format: ImageFormat; seed: string | number },
): Promise<PushedIndex> {
  const amd64 = await pushImage(url, repo, null, { ...opts, platform: { os: 'linux', architecture: 'amd64' } });
  const arm64 = await pushImage(url, repo, null, {
    ...opts,
    platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
  });
  return pushIndex(url, repo, tag, [amd64, arm64], opts.format);
}

/** The OCI 1.1 referrers fallback tag for a subject: `sha256-<hex>`. */
export function referrersTag(subjectDigest: string): string {
  return subjectDigest.replace(':', '-');
}

/**
 * Pushes an OCI artifact (an OCI image manifest with `artifactType`, the empty config, one small layer and
 * `subject`) by digest, as signatures and SBOMs are. distribution 2.8 has no referrers API, so by default
 * the artifact is also added to the subject's fallback tag index (`sha256-<hex>`), as OCI 1.1 clients do.
 */
export async function pushReferrer(
  url: string,
  repo: string,
  subject: Descriptor,
  artifactType: string,
  opts: { seed?: string | number; annotations?: Record<string, string>; fallbackTag?: boolean } = {},
): Promise<PushedArtifact> {
  const empty = await pushBlob(url, repo, Buffer.from('{}'));
  const payload = Buffer.from(
    JSON.stringify({ subject: subject.digest, artifactType, seed: String(opts.seed ?? 'referrer') }),
  );
  const layer = await pushBlob(url, repo, payload);
  const annotations = { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z', ...opts.annotations };
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    artifactType,
    config: { mediaType: MediaTypes.ociEmpty, ...empty },
    layers: [{ mediaType: 'application/json', ...layer }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations,
  };
  const manifestBytes = serialise(manifest);
  const digest = await pushManifest(url, repo, sha256(manifestBytes), manifestBytes, MediaTypes.ociManifest);
  const descriptor: Descriptor = {
    mediaType: MediaTypes.ociManifest,
    digest,
    size: manifestBytes.length,
    artifactType,
    annotations,
  };
  if (opts.fallbackTag ?? true) {
    const tag = referrersTag(subject.digest);
    const existing = await fetchManifest(url, repo, tag, MediaTypes.ociIndex).catch(() => undefined);
    const prior = existing ? (JSON.parse(existing.bytes.toString('utf8')) as { manifests?: Descriptor[] }).manifests : [];
    const index = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: [...(prior ?? []).filter((d) => d.digest !== digest), descriptor],
    };
    await pushManifest(url, repo, tag, serialise(index), MediaTypes.ociIndex);
  }
  return {
    repo,
    digest,
    mediaType: MediaTypes.ociManifest,
    artifactType,
    manifestBytes,
    subject,
    layers: [layer],
    descriptor,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Reading back

export interface Fetched {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  bytes: Buffer;
  /** sha256 of `bytes`. */
  digest: string;
}

/** GETs a manifest (404 and other errors throw). `accept` defaults to every manifest type. */
export async function fetchManifest(
  url: string,
  repo: string,
  reference: string,
  accept: string = ALL_MANIFEST_TYPES,
  headers: Record<string, string> = {},
): Promise<Fetched> {
  const res = await request(`${base(url)}/v2/${repo}/manifests/${reference}`, {
    headers: { accept, ...headers },
  });
  await expectStatus(res, [200], `GET manifest ${repo}:${reference}`);
  const bytes = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, bytes, digest: sha256(bytes) };
}

/** GETs a blob (following redirects; errors throw) and hashes it. */
export async function fetchBlob(
  url: string,
  repo: string,
  digest: string,
  headers: Record<string, string> = {},
): Promise<Fetched> {
  let target = new URL(`${base(url)}/v2/${repo}/blobs/${digest}`);
  let hdrs = headers;
  for (let hops = 0; ; hops++) {
    const res = await request(target, { headers: hdrs });
    if ([301, 302, 303, 307, 308].includes(res.statusCode) && hops < 5) {
      await res.body.dump();
      const next = new URL(header(res.headers, 'location') ?? '', target);
      // Never forward credentials to another origin.
      if (next.origin !== target.origin) hdrs = Object.fromEntries(Object.entries(hdrs).filter(([k]) => k.toLowerCase() !== 'authorization'));
      target = next;
      continue;
    }
    await expectStatus(res, [200, 206], `GET blob ${repo}@${digest}`);
    const bytes = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, bytes, digest: sha256(bytes) };
  }
}
