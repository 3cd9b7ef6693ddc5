import { MirrorgateError } from '../../common/errors.js';
import type { AccessAction, AccessConfig } from '../../config/schema.js';
import { globToRegExp } from '../../reference/match.js';
import type { Principal } from './authenticator.js';

/** A repository as access rules see it: hosted or proxied, and the name clients use. */
export interface AccessTarget {
  kind: 'hosted' | 'proxied';
  name: string;
}

interface CompiledRule {
  users: ReadonlySet<string>;
  repositories: RegExp[];
  actions: ReadonlySet<AccessAction>;
}

/**
 * Who may do what (docs/hosted.md). Proxied repositories are read-only: any authenticated user may pull
 * them, anonymous clients too when `anonymousRead` is on. Hosted repositories: with no rules every
 * authenticated user may pull, push and delete; with rules, only what a rule grants. Without authentication
 * configured (`principal` undefined) the mirror is open, pushes included.
 */
export class AccessRules {
  private readonly rules: CompiledRule[];

  constructor(
    config: AccessConfig,
    private readonly realm: string,
  ) {
    this.rules = config.rules.map((r) => ({
      users: new Set([...r.users, ...r.groups.flatMap((g) => config.groups[g] ?? [])]),
      repositories: r.repositories.map(globToRegExp),
      actions: new Set(r.actions),
    }));
  }

  allows(principal: Principal | undefined, target: AccessTarget, action: AccessAction): boolean {
    if (!principal) return true;
    if (target.kind === 'proxied') return action === 'pull';
    if (this.rules.length === 0) return principal.kind === 'user';
    const who = principal.kind === 'user' ? principal.user : 'anonymous';
    return this.rules.some(
      (r) => r.actions.has(action) && (r.users.has(who) || (principal.kind === 'user' && r.users.has('*'))) && r.repositories.some((re) => re.test(target.name)),
    );
  }

  /** Throws when the action is not allowed: UNAUTHORIZED (with the challenge) for anonymous clients, DENIED for users. */
  check(principal: Principal | undefined, target: AccessTarget, action: AccessAction): void {
    if (this.allows(principal, target, action)) return;
    if (principal?.kind === 'anonymous') {
      throw new MirrorgateError('UNAUTHORIZED', `authentication required to ${action} ${target.name}`, { headers: { 'www-authenticate': `Basic realm="${this.realm}"` } });
    }
    throw new MirrorgateError('DENIED', target.kind === 'proxied' ? `${target.name} is a proxied repository: it is read-only` : `not allowed to ${action} ${target.name}`);
  }
}
