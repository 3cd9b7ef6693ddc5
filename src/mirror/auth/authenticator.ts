import { setTimeout as sleep } from 'node:timers/promises';
import { fail, isMirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { FailedLogins } from './failed-logins.js';
import type { UserSource } from './htpasswd-file.js';
import { BCRYPT_MAX_PASSWORD_BYTES } from './htpasswd.js';
import type { VerificationCache } from './verification-cache.js';

/** Who a request acts as. */
export type Principal = { kind: 'user'; user: string } | { kind: 'anonymous' };

export interface Credentials {
  username: string;
  password: string;
}

/** Checks a password against a bcrypt hash. Injected so tests can count calls. */
export type PasswordVerifier = (password: string, hash: string) => Promise<boolean>;

export interface AuthenticatorDeps {
  users: UserSource;
  cache: VerificationCache;
  /** Runs bcrypt off the event loop and bounds the checks at once (BcryptPool). */
  verify: PasswordVerifier;
  failures: FailedLogins;
  /**
   * How long a refused login (429) waits before it is answered. A client that ignores `Retry-After` and asks
   * again at once then sends at most one request per connection per this long, instead of as many as the
   * event loop can answer.
   */
  refusalDelayMs: number;
  logger: Logger;
  anonymousRead: boolean;
}

/**
 * The mirror's authentication domain: credentials in, a principal or UNAUTHORIZED out. Simultaneous checks of
 * the same credentials share one bcrypt run; successes are cached (see VerificationCache); failures never are,
 * and each one spends the client address's and the user's budget (see FailedLogins).
 */
export class Authenticator {
  private readonly inflight = new Map<string, Promise<boolean>>();

  constructor(private readonly deps: AuthenticatorDeps) {
    deps.users.onChange(() => deps.cache.clear());
  }

  get anonymousRead(): boolean {
    return this.deps.anonymousRead;
  }

  /**
   * Resolves the principal for a request from `address` (the client's IP address); `undefined` credentials
   * mean none were sent. UNAUTHORIZED for wrong credentials, TOOMANYREQUESTS once a failure budget is spent.
   */
  async authenticate(credentials: Credentials | undefined, address: string | undefined): Promise<Principal> {
    if (!credentials) {
      if (this.deps.anonymousRead) return { kind: 'anonymous' };
      throw fail('UNAUTHORIZED', 'authentication required');
    }
    let ok: boolean;
    try {
      ok = await this.check(credentials, address);
    } catch (err) {
      if (isMirrorgateError(err) && err.code === 'TOOMANYREQUESTS') await sleep(this.deps.refusalDelayMs);
      throw err;
    }
    if (!ok) {
      this.deps.logger.info({ user: credentials.username.slice(0, 64), address }, 'authentication failed');
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

  /**
   * True when the password is right; never throws for a wrong one. A check that joins one already running for
   * the same credentials costs no budget; a new one reserves a failure first (TOOMANYREQUESTS when spent) and
   * gives it back when the password is right or the check could not run.
   */
  async check({ username, password }: Credentials, address: string | undefined): Promise<boolean> {
    const stored = this.deps.users.hashOf(username);
    const hash = stored ?? this.deps.users.dummyHash();
    const mac = this.deps.cache.mac(username, password, hash);
    if (stored && this.deps.cache.has(username, mac)) return true;
    const key = mac.toString('base64');
    const joined = this.inflight.get(key);
    if (joined) return joined;
    const giveBack = this.deps.failures.reserve(address, username);
    const pending = this.verify(password, hash)
      .then(
        (ok) => {
          const good = ok && stored !== undefined;
          if (good) giveBack();
          // Only remember it if the users did not change while bcrypt ran.
          if (good && this.deps.users.hashOf(username) === stored) this.deps.cache.remember(username, mac);
          return good;
        },
        (err: unknown) => {
          giveBack();
          throw err;
        },
      )
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, pending);
    return pending;
  }

  /**
   * bcrypt ignores everything after a password's 72nd byte, so a longer password would match the hash of its
   * first 72 bytes. Such a password is never right, for known and unknown users alike, so it is refused
   * without a bcrypt run: quickly, but equally quickly whoever the user is.
   */
  private verify(password: string, hash: string): Promise<boolean> {
    if (Buffer.byteLength(password, 'utf8') > BCRYPT_MAX_PASSWORD_BYTES) return Promise.resolve(false);
    return this.deps.verify(password, hash);
  }
}
