import type { Clock } from '../../common/clock.js';

interface Entry {
  token: string;
  expiresAt: number;
}

/**
 * Bearer tokens per (realm, service, scope), kept until shortly before they expire. Concurrent requests
 * for the same key share one token fetch.
 */
export class TokenCache {
  private readonly entries = new Map<string, Entry>();
  private readonly pending = new Map<string, Promise<string>>();

  constructor(private readonly clock: Clock, private readonly maxEntries = 10_000) {}

  static key(realm: string, service: string | undefined, scope: string | undefined): string {
    return `${realm}\u0000${service ?? ''}\u0000${scope ?? ''}`;
  }

  peek(key: string): string | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= this.clock.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.token;
  }

  /** Returns a cached token or runs `fetch` once for all concurrent callers of the same key. */
  async get(key: string, fetch: () => Promise<{ token: string; expiresInSeconds: number }>): Promise<string> {
    const cached = this.peek(key);
    if (cached) return cached;
    let p = this.pending.get(key);
    if (!p) {
      p = fetch()
        .then(({ token, expiresInSeconds }) => {
          // Renew a little early so a token never expires between our check and the upstream's.
          const ttl = Math.max(1, expiresInSeconds - Math.min(10, expiresInSeconds / 4)) * 1000;
          if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
          this.entries.set(key, { token, expiresAt: this.clock.now() + ttl });
          return token;
        })
        .finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }

  invalidate(key: string): void {
    this.entries.delete(key);
  }
}
