import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../common/clock.js';

/**
 * Remembers successful password checks for a short while so a client pulling 40 layers pays bcrypt once.
 * What is stored per user is an HMAC-SHA256, under a random key that never leaves this process, of the
 * user, the password and the stored hash: never the password, and useless to anyone who reads memory
 * dumps without the key. A hit is compared with `timingSafeEqual`. Bounded (oldest dropped first), entries
 * expire after `ttlMs`, `clear()` on every htpasswd reload. Failures are never stored.
 */
export class VerificationCache {
  private readonly key = randomBytes(32);
  private readonly entries = new Map<string, { mac: Buffer; expires: number }>();

  constructor(private readonly opts: { ttlMs: number; maxEntries: number; clock: Clock }) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * The keyed hash of a credential check. Each field is framed by its length, so no two inputs collide; one
   * string and one update, because this runs on every authenticated request.
   */
  mac(user: string, password: string, hash: string): Buffer {
    return createHmac('sha256', this.key).update(`${user.length}:${user}${password.length}:${password}${hash.length}:${hash}`, 'utf8').digest();
  }

  /** True when this exact check succeeded within the TTL. */
  has(user: string, mac: Buffer): boolean {
    const e = this.entries.get(user);
    if (!e) return false;
    if (e.expires <= this.opts.clock.now()) {
      this.entries.delete(user);
      return false;
    }
    return timingSafeEqual(e.mac, mac);
  }

  remember(user: string, mac: Buffer): void {
    if (this.opts.maxEntries <= 0 || this.opts.ttlMs <= 0) return;
    this.entries.delete(user); // re-insert at the end: insertion order is age order
    while (this.entries.size >= this.opts.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
    this.entries.set(user, { mac, expires: this.opts.clock.now() + this.opts.ttlMs });
  }

  clear(): void {
    this.entries.clear();
  }
}
