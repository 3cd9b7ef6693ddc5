import { parseReference } from '../../reference/parse.js';
import { rootLabel } from '../cache/plan.js';
import type { RepositoryRef } from '../store/types.js';
import { canonicalHost } from '../upstream/upstream-host.js';

/** An image kept warm, resolved to the repository that holds it in the cache. */
export interface WarmTarget {
  /** As configured. */
  image: string;
  repo: RepositoryRef;
  /** What is fetched: the digest when the reference has one (that is what a kubelet pulls), else the tag. */
  reference: string;
  tag?: string;
  digest?: string;
}

/**
 * The configured warm images as repositories and references (`nginx` is docker.io's `library/nginx:latest`).
 * The configuration schema has checked each is a reference to a configured upstream.
 */
export function warmTargets(images: readonly string[]): WarmTarget[] {
  return images.map((image) => {
    const parsed = parseReference(image);
    if (!parsed.ok) throw new Error(`not an image reference: ${image}`); // the schema refuses these
    const { domain, path, digest } = parsed.ref;
    const repo = { upstream: canonicalHost(domain), path };
    if (digest !== undefined) return { image, repo, reference: digest, digest, ...(parsed.ref.tag !== undefined ? { tag: parsed.ref.tag } : {}) };
    const tag = parsed.ref.tag ?? 'latest';
    return { image, repo, reference: tag, tag };
  });
}

/** The cache lifecycle's units that warm images stand for (`PlanInput.keep`): never evicted. */
export function warmKeep(images: readonly string[]): ReadonlySet<string> {
  return new Set(warmTargets(images).map((t) => rootLabel(t.digest !== undefined ? { repo: t.repo, digest: t.digest } : { repo: t.repo, tag: t.reference, digest: '' })));
}
