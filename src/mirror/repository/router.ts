import type { Logger } from '../../common/logger.js';
import type { LocalManifestStore } from '../local/local-manifest-store.js';
import type { ProxyBlobStore } from '../proxy/proxy-blob-store.js';
import type { ProxyManifestStore } from '../proxy/proxy-manifest-store.js';
import { listReferrers } from '../service/referrers.js';
import { listTags } from '../service/tags.js';
import type { MetadataStore } from '../store/metadata-store.js';
import type { Upstreams } from '../upstream/upstreams.js';
import type { Repository } from './repository.js';

export interface RouterDeps {
  upstreams: Upstreams;
  blobs: ProxyBlobStore;
  manifests: ProxyManifestStore;
  local: LocalManifestStore;
  metadata: Pick<MetadataStore, 'listRepositories'>;
  logger: Logger;
}

/** Resolves the repository a request names (path and `?ns=`) to the repository that serves it. */
export class RepositoryRouter {
  constructor(private readonly deps: RouterDeps) {}

  /** NAME_INVALID or UPSTREAM_UNKNOWN when the name routes nowhere; never an outbound request. */
  resolve(name: string, ns?: string): Repository {
    const ref = this.deps.upstreams.resolve(name, ns);
    const deps = this.deps;
    return {
      kind: 'proxied',
      ref,
      blobs: deps.blobs,
      manifests: deps.manifests,
      listTags: (page) => listTags(deps, ref, page),
      listReferrers: (subject, artifactType) => listReferrers(deps, ref, subject, artifactType),
    };
  }

  /** Names of every repository the mirror holds something of, as clients name them, sorted. */
  async catalog(): Promise<string[]> {
    return (await this.deps.metadata.listRepositories()).map((r) => this.deps.upstreams.publicName(r)).sort();
  }
}
