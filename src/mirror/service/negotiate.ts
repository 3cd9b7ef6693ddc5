import { MirrorgateError } from '../../common/errors.js';
import { accepts, INDEX_TYPES, parseManifest, type Descriptor } from '../store/manifest-media.js';
import type { Manifest, ManifestDescriptor, ManifestStore, RepositoryRef } from '../store/types.js';

/** The platform served to clients that cannot take a multi-arch index (as distribution does). */
export const DEFAULT_PLATFORM = { os: 'linux', architecture: 'amd64' };

function pickPlatform(children: Descriptor[]): Descriptor | undefined {
  return (
    children.find((c) => c.platform?.os === DEFAULT_PLATFORM.os && c.platform?.architecture === DEFAULT_PLATFORM.architecture) ??
    children.find((c) => !c.platform || c.platform.os !== 'unknown')
  );
}

/**
 * Answers a client according to its Accept header: the stored manifest when acceptable; for an index the
 * client cannot take, the default platform's manifest; otherwise MANIFEST_UNKNOWN saying why.
 */
export async function negotiateManifest(store: ManifestStore, repo: RepositoryRef, reference: string, accept: string[]): Promise<Manifest> {
  const m = await store.get(repo, { reference, accept });
  if (!m) throw new MirrorgateError('MANIFEST_UNKNOWN', `manifest ${reference} unknown`, { detail: { reference } });
  if (accepts(accept, m.mediaType)) return m;
  if (INDEX_TYPES.has(m.mediaType)) {
    const child = pickPlatform(parseManifest(m.bytes)?.manifests ?? []);
    if (child && accepts(accept, child.mediaType)) {
      const resolved = await store.get(repo, { reference: child.digest, accept });
      if (resolved) return resolved;
    }
  }
  throw new MirrorgateError('MANIFEST_UNKNOWN', `manifest ${reference} is ${m.mediaType}, which the client's Accept header does not allow`, {
    detail: { reference, mediaType: m.mediaType },
  });
}

/** HEAD: the descriptor alone when acceptable, else the same negotiation as GET. */
export async function negotiateDescriptor(store: ManifestStore, repo: RepositoryRef, reference: string, accept: string[]): Promise<ManifestDescriptor> {
  const d = await store.stat(repo, { reference, accept });
  if (!d) throw new MirrorgateError('MANIFEST_UNKNOWN', `manifest ${reference} unknown`, { detail: { reference } });
  if (accepts(accept, d.mediaType)) return d;
  const m = await negotiateManifest(store, repo, reference, accept);
  return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length };
}
