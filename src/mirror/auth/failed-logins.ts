import type { Clock } from '../../common/clock.js';
import { MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { addressKey } from './client-address.js';
import { TokenBuckets } from './token-buckets.js';

export interface FailedLoginLimits {
  /** Failed logins a client address may have per window (0: no limit). */
  perAddress: number;
  /** Failed logins a user name may have per window, from all addresses together (0: no limit). */
  perUser: number;
  /** How long a spent budget takes to refill. */
  windowMs: number;
  /** Most addresses, and most user names, tracked at once. */
  maxKeys: number;
}

/** A budget keyed by something the client sent. */
interface Budget {
  name: 'address' | 'user';
  buckets: TokenBuckets;
}

/** Longest user name kept as a key: htpasswd names are at most 255 characters, so longer ones never exist. */
const MAX_USER_KEY = 256;

/**
 * Budgets of failed logins per client address and per user name (token buckets: `perAddress` failures at
 * once, refilling over `windowMs`). A password check reserves one failure from both budgets before it runs
 * and gives it back when the password was right, so only failures count, and a spent budget refuses the
 * check before any bcrypt work. Unknown user names are budgeted exactly like known ones: a 429 never tells
 * whether a user exists.
 */
export class FailedLogins {
  private readonly budgets: Budget[] = [];

  constructor(
    limits: FailedLoginLimits,
    private readonly deps: { clock: Clock; logger: Logger },
  ) {
    const budget = (name: Budget['name'], capacity: number): void => {
      if (capacity > 0) this.budgets.push({ name, buckets: new TokenBuckets({ capacity, refillMs: limits.windowMs, maxKeys: limits.maxKeys, clock: deps.clock }) });
    };
    budget('address', limits.perAddress);
    budget('user', limits.perUser);
  }

  /**
   * Reserves one failure for a check of `user` from `address`. Throws TOOMANYREQUESTS (429, `Retry-After`
   * in seconds) when either budget is spent. Returns a function that gives the reservation back.
   */
  reserve(address: string | undefined, user: string): () => void {
    const keys = { address: addressKey(address), user: user.slice(0, MAX_USER_KEY) };
    let waitMs = 0;
    let spent: Budget | undefined;
    for (const b of this.budgets) {
      const w = b.buckets.waitMs(keys[b.name]);
      if (w > waitMs) [waitMs, spent] = [w, b];
    }
    if (spent) {
      const retryAfter = Math.max(1, Math.ceil(waitMs / 1000));
      if (spent.buckets.refuse(keys[spent.name])) {
        this.deps.logger.warn({ budget: spent.name, address: keys.address, user: keys.user.slice(0, 64), retryAfter }, 'too many failed logins; refusing logins for a while');
      }
      throw new MirrorgateError('TOOMANYREQUESTS', 'too many failed logins; retry later', { headers: { 'retry-after': String(retryAfter) } });
    }
    for (const b of this.budgets) b.buckets.take(keys[b.name]);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      for (const b of this.budgets) b.buckets.give(keys[b.name]);
    };
  }
}
