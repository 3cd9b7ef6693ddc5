import { isValidRepositoryPath } from '../../reference/grammar.js';
import { globToRegExp } from '../../reference/match.js';
import type { RepositoryRef } from '../store/types.js';

/** The storage key of hosted repositories (no upstream may be configured under it). */
export const HOSTED = 'hosted';

/**
 * Which repository names the mirror hosts. A name matches when the client writes it without a registry
 * prefix: `team-a/app` is hosted under `team-a/**`, while `docker.io/team-a/app` (or `?ns=docker.io`) is
 * always Docker Hub's. Patterns cannot begin with a registry-like component (the configuration refuses it),
 * so a hosted name never shadows `ghcr.io/...` and friends.
 */
export class HostedNames {
  private readonly patterns: RegExp[];

  constructor(patterns: readonly string[]) {
    this.patterns = patterns.map(globToRegExp);
  }

  get enabled(): boolean {
    return this.patterns.length > 0;
  }

  /** The hosted repository a request names, or undefined when the name is not hosted. */
  match(name: string): RepositoryRef | undefined {
    if (!isValidRepositoryPath(name) || !this.patterns.some((re) => re.test(name))) return undefined;
    return { upstream: HOSTED, path: name };
  }
}

export function isHosted(repo: RepositoryRef): boolean {
  return repo.upstream === HOSTED;
}
