import { fail } from '../../common/errors.js';
import { INDEX_TYPES, manifestReferences, parseManifest, type Descriptor } from '../store/manifest-media.js';
import { formatPlatform, selectPlatforms } from './platforms.js';

export interface FetchedManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

/** What an image is fetched through: the mirror's caching stores, or a running mirror over HTTP. */
export interface ImageSource {
  /** A manifest by tag or digest, verified. */
  manifest(reference: string): Promise<FetchedManifest>;
  /** Makes sure the blob is in the cache, fetching it through the cache when it is not. */
  blob(digest: string): Promise<void>;
}

export interface FetchedImage {
  /** The manifest the reference names (an index for a multi-platform image). */
  digest: string;
  mediaType: string;
  /** The platforms fetched; empty for a single-platform image. */
  platforms: string[];
  manifests: number;
  blobs: number;
  /** Bytes of those manifests and blobs, by their descriptors. */
  size: number;
}

/** Blobs fetched at once for one image. */
const BLOB_CONCURRENCY = 4;

/**
 * Fetches an image the way a pull does: its manifest; for an index, the manifests of the wanted platforms;
 * then every config and layer blob they name. MANIFEST_UNKNOWN when an index has none of the platforms.
 * Once `signal` is aborted no further manifest or blob is asked for (the ones in progress finish).
 */
export async function fetchImage(source: ImageSource, reference: string, platforms: readonly string[], signal?: AbortSignal): Promise<FetchedImage> {
  const top = await source.manifest(reference);
  const images: FetchedManifest[] = [];
  const fetchedPlatforms: string[] = [];
  let size = top.bytes.length;
  if (INDEX_TYPES.has(top.mediaType)) {
    const entries = (parseManifest(top.bytes)?.manifests ?? []) as Descriptor[];
    const chosen = selectPlatforms(entries, platforms);
    if (chosen.length === 0) throw fail('MANIFEST_UNKNOWN', `${reference}: the index has no manifest for ${platforms.join(', ')}`);
    for (const entry of chosen) {
      signal?.throwIfAborted();
      const child = await source.manifest(entry.digest);
      if (INDEX_TYPES.has(child.mediaType)) throw fail('MANIFEST_UNKNOWN', `${reference}: an index inside the index (${entry.digest}) is not fetched`);
      images.push(child);
      fetchedPlatforms.push(formatPlatform(entry.platform!));
      size += child.bytes.length;
    }
  } else {
    images.push(top);
  }
  const blobs = new Map<string, number>();
  for (const m of images) {
    const doc = parseManifest(m.bytes);
    const sizes = new Map([doc?.config, ...(doc?.layers ?? [])].filter((d) => d !== undefined).map((d) => [d.digest, d.size]));
    for (const digest of doc ? manifestReferences(doc).blobs : []) blobs.set(digest, sizes.get(digest) ?? 0);
  }
  const queue = [...blobs.keys()];
  const worker = async (): Promise<void> => {
    try {
      for (let digest = queue.shift(); digest !== undefined; digest = queue.shift()) {
        signal?.throwIfAborted();
        await source.blob(digest);
      }
    } catch (err) {
      queue.length = 0; // the image failed: the other workers stop after their current blob
      throw err;
    }
  };
  await Promise.all(Array.from({ length: Math.min(BLOB_CONCURRENCY, queue.length) }, worker));
  for (const s of blobs.values()) size += s;
  return { digest: top.digest, mediaType: top.mediaType, platforms: fetchedPlatforms, manifests: 1 + (images[0] === top ? 0 : images.length), blobs: blobs.size, size };
}
