import { fail } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { Semaphore } from '../limits/semaphore.js';
import type { UserSource } from './htpasswd-file.js';
import type { VerificationCache } from './verification-cache.js';

/** Who a request acts as. */
export type Principal = { kind: 'user'; user: string } | { kind: 'anonymous' };

export interface Credentials {
  username: string;
  password: string;
}

/** Checks a password against a bcrypt hash. Injected so tests can count calls. */
export type PasswordVerifier = (password: string, hash: string) => Promise<boolean>;

/**
 * Checked for unknown users so that "no such user" costs as long as "wrong password" (no user enumeration
 * by timing). A cost-10 bcrypt hash of random bytes nobody knows.
 */
const DUMMY_HASH = '$2b$10$j01z0XRSG5//6KBUUCVuu.6i5qy1BfP.MSlxXeFUlzV.7JWTyPAQe';

export interface AuthenticatorDeps {
  users: UserSource;
  cache: VerificationCache;
  verify: PasswordVerifier;
  /** Bounds the bcrypt checks running at once (they are CPU-bound on the event loop). */
  limiter: Semaphore;
  logger: Logger;
  anonymousRead: boolean;
}

/**
 * The mirror's authentication domain: credentials in, a principal or UNAUTHORIZED out. Simultaneous checks of
 * the same credentials share one bcrypt run; successes are cached (see VerificationCache); failures never are.
 */
export class Authenticator {
  private readonly inflight = new Map<string, Promise<boolean>>();

  constructor(private readonly deps: AuthenticatorDeps) {
    deps.users.onChange(() => deps.cache.clear());
  }

  get anonymousRead(): boolean {
    return this.deps.anonymousRead;
  }

  /** Resolves the principal for a request; `undefined` credentials mean none were sent. */
  async authenticate(credentials: Credentials | undefined): Promise<Principal> {
    if (!credentials) {
      if (this.deps.anonymousRead) return { kind: 'anonymous' };
      throw fail('UNAUTHORIZED', 'authentication required');
    }
    const ok = await this.check(credentials);
    if (!ok) {
      this.deps.logger.info({ user: credentials.username.slice(0, 64) }, 'authentication failed');
      throw fail('UNAUTHORIZED', 'invalid username or password');
    }
    return { kind: 'user', user: credentials.username };
  }

  /**
   * The principal for credentials whose check succeeded recently (no bcrypt, no promise), or undefined when
   * the full check is needed. This is the path of nearly every authenticated request.
   */
  cached({ username, password }: Credentials): Principal | undefined {
    const stored = this.deps.users.hashOf(username);
    if (!stored) return undefined;
    return this.deps.cache.has(username, this.deps.cache.mac(username, password, stored)) ? { kind: 'user', user: username } : undefined;
  }

  /** True when the password is right; never throws for a wrong one. */
  async check({ username, password }: Credentials): Promise<boolean> {
    const stored = this.deps.users.hashOf(username);
    const hash = stored ?? DUMMY_HASH;
    const mac = this.deps.cache.mac(username, password, hash);
    if (stored && this.deps.cache.has(username, mac)) return true;
    const key = mac.toString('base64');
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.deps.limiter
        .run(() => this.deps.verify(password, hash))
        .then((ok) => {
          const good = ok && stored !== undefined;
          // Only remember it if the users did not change while bcrypt ran.
          if (good && this.deps.users.hashOf(username) === stored) this.deps.cache.remember(username, mac);
          return good;
        })
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }
}
