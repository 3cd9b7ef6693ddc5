import type { RepositoryRef } from '../store/types.js';

/**
 * Keys of the access index. Blobs and manifests are content-addressed and shared across repositories;
 * tags belong to one repository.
 */
export const accessKey = {
  blob: (digest: string): string => `blob:${digest}`,
  manifest: (digest: string): string => `manifest:${digest}`,
  tag: (repo: RepositoryRef, tag: string): string => `tag:${repo.upstream}/${repo.path}:${tag}`,
};
