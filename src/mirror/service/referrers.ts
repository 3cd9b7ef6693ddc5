import type { Logger } from '../../common/logger.js';
import { readCapped } from '../proxy/read-capped.js';
import type { LocalManifestStore } from '../local/local-manifest-store.js';
import { MEDIA_TYPES, type Descriptor } from '../store/manifest-media.js';
import type { RepositoryRef } from '../store/types.js';
import { discard, header } from '../upstream/client.js';
import type { Upstreams } from '../upstream/upstreams.js';

const REFERRERS_MAX_BYTES = 4 * 1024 * 1024;

export interface ReferrersAnswer {
  /** The image index to send, exactly as built or as the upstream sent it. */
  body: Buffer;
  /** Set when the artifactType filter was applied. */
  filtersApplied: boolean;
}

/**
 * OCI 1.1 referrers: proxied from upstreams that implement the API; otherwise (404, error, outage)
 * answered from the referrers the mirror holds for the subject, an empty index when none.
 */
export async function listReferrers(
  deps: { upstreams: Upstreams; local: Pick<LocalManifestStore, 'listReferrers'>; logger: Logger },
  repo: RepositoryRef,
  subject: string,
  artifactType: string | undefined,
): Promise<ReferrersAnswer> {
  try {
    const qs = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
    const res = await deps.upstreams.client(repo.upstream).request({ method: 'GET', path: `/v2/${repo.path}/referrers/${subject}${qs}`, repository: repo.path, kind: 'referrers' });
    const type = header(res.headers, 'content-type') ?? '';
    if (res.status === 200 && type.startsWith(MEDIA_TYPES.ociIndex)) {
      const body = await readCapped(res.body, REFERRERS_MAX_BYTES, `referrers of ${subject}`);
      const index = JSON.parse(body.toString('utf8')) as { manifests?: Descriptor[] };
      const applied = header(res.headers, 'oci-filters-applied')?.includes('artifactType') ?? false;
      if (!artifactType || applied) return { body, filtersApplied: applied };
      // The upstream ignored the filter: apply it here so clients get what they asked for.
      const manifests = (index.manifests ?? []).filter((d) => d.artifactType === artifactType);
      return { body: Buffer.from(JSON.stringify({ ...index, manifests })), filtersApplied: true };
    }
    await discard(res.body);
  } catch (err) {
    deps.logger.debug({ upstream: repo.upstream, err: (err as Error).message }, 'referrers not available upstream; answering from the cache');
  }
  return storedReferrers(deps.local, repo, subject, artifactType);
}

/** The referrers the mirror holds for a subject in a repository, as an image index (a hosted repository's answer). */
export async function storedReferrers(
  local: Pick<LocalManifestStore, 'listReferrers'>,
  repo: RepositoryRef,
  subject: string,
  artifactType: string | undefined,
): Promise<ReferrersAnswer> {
  let manifests: Descriptor[] = await local.listReferrers(repo, subject);
  if (artifactType) manifests = manifests.filter((d) => d.artifactType === artifactType);
  const index = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests };
  return { body: Buffer.from(JSON.stringify(index)), filtersApplied: Boolean(artifactType) };
}
