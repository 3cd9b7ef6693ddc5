import { fail } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { AccessTarget } from '../auth/access.js';
import type { HostedManifests } from '../hosted/hosted-manifests.js';
import { HostedNames, isHosted } from '../hosted/hosted-names.js';
import type { Uploads } from '../hosted/uploads.js';
import type { LocalBlobStore } from '../local/local-blob-store.js';
import type { LocalManifestStore } from '../local/local-manifest-store.js';
import type { ProxyBlobStore } from '../proxy/proxy-blob-store.js';
import type { ProxyManifestStore } from '../proxy/proxy-manifest-store.js';
import { paginate } from '../service/pagination.js';
import { listReferrers, storedReferrers } from '../service/referrers.js';
import { listTags } from '../service/tags.js';
import type { MetadataStore } from '../store/metadata-store.js';
import type { RepositoryRef } from '../store/types.js';
import type { Upstreams } from '../upstream/upstreams.js';
import type { HostedRepository, ProxiedRepository, Repository } from './repository.js';

export interface RouterDeps {
  upstreams: Upstreams;
  hostedNames: HostedNames;
  proxy: { blobs: ProxyBlobStore; manifests: ProxyManifestStore };
  local: { blobs: LocalBlobStore; manifests: LocalManifestStore };
  hosted: { uploads: Uploads; pushes: HostedManifests };
  metadata: Pick<MetadataStore, 'listRepositories' | 'listLinks'>;
  logger: Logger;
}

/**
 * Resolves the repository a request names (path and `?ns=`): hosted when the name, written without a
 * registry, matches a hosted pattern; otherwise proxied, routed to its upstream. A hosted name never
 * reaches an upstream; `?ns=` always names an upstream.
 */
export class RepositoryRouter {
  constructor(private readonly deps: RouterDeps) {}

  /** NAME_INVALID or UPSTREAM_UNKNOWN when the name routes nowhere; never an outbound request. */
  resolve(name: string, ns?: string): Repository {
    const hosted = ns === undefined ? this.deps.hostedNames.match(name) : undefined;
    return hosted ? this.hosted(hosted) : this.proxied(this.deps.upstreams.resolve(name, ns));
  }

  /** Names of the repositories the mirror holds something of that `visible` admits, as clients name them, sorted. */
  async catalog(visible: (target: AccessTarget) => boolean): Promise<string[]> {
    return (await this.deps.metadata.listRepositories())
      .map((r): AccessTarget => ({ kind: isHosted(r) ? 'hosted' : 'proxied', name: this.publicName(r) }))
      .filter(visible)
      .map((t) => t.name)
      .sort();
  }

  private async holdsAnything(ref: RepositoryRef): Promise<boolean> {
    const { metadata } = this.deps;
    return (await metadata.listLinks(ref, 'manifest')).length > 0 || (await metadata.listLinks(ref, 'blob')).length > 0;
  }

  private publicName(ref: RepositoryRef): string {
    return isHosted(ref) ? ref.path : this.deps.upstreams.publicName(ref);
  }

  private proxied(ref: RepositoryRef): ProxiedRepository {
    const { upstreams, local, logger, proxy } = this.deps;
    const services = { upstreams, local: local.manifests, logger };
    return {
      kind: 'proxied',
      ref,
      name: this.publicName(ref),
      blobs: proxy.blobs,
      manifests: proxy.manifests,
      listTags: (page) => listTags(services, ref, page),
      listReferrers: (subject, artifactType) => listReferrers(services, ref, subject, artifactType),
    };
  }

  private hosted(ref: RepositoryRef): HostedRepository {
    const { local, hosted } = this.deps;
    return {
      kind: 'hosted',
      ref,
      name: ref.path,
      blobs: local.blobs,
      manifests: local.manifests,
      uploads: hosted.uploads,
      pushes: hosted.pushes,
      listTags: async (page) => {
        const tags = await local.manifests.listTags(ref);
        // A repository whose tags were all deleted still exists (the spec: 200 and an empty list) while it holds content.
        if (tags.length === 0 && !(await this.holdsAnything(ref))) throw fail('NAME_UNKNOWN', `repository ${ref.path} is not known`);
        const p = paginate(tags, page);
        return p.next ? { tags: p.items, next: p.next } : { tags: p.items };
      },
      listReferrers: (subject, artifactType) => storedReferrers(local.manifests, ref, subject, artifactType),
    };
  }
}
