import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/common/clock.js';
import { VerificationCache } from '../../../../src/mirror/auth/verification-cache.js';

describe('VerificationCache', () => {
  it('remembers a check for its TTL, keyed per user by a MAC that never contains the password', () => {
    const clock = new ManualClock();
    const cache = new VerificationCache({ ttlMs: 1000, maxEntries: 10, clock });
    const mac = cache.mac('alice', 'secret', '$2b$hash');
    expect(mac.toString('latin1')).not.toContain('secret');
    expect(mac).toHaveLength(32);
    expect(cache.has('alice', mac)).toBe(false);
    cache.remember('alice', mac);
    expect(cache.has('alice', mac)).toBe(true);
    expect(cache.has('alice', cache.mac('alice', 'other', '$2b$hash'))).toBe(false);
    expect(cache.has('alice', cache.mac('alice', 'secret', '$2b$newhash'))).toBe(false);
    expect(cache.has('bob', mac)).toBe(false);
    clock.advance(1000);
    expect(cache.has('alice', mac)).toBe(false);
    expect(cache.size).toBe(0);
  });

  it('uses a different key in each process (instance): MACs do not carry over', () => {
    const clock = new ManualClock();
    const a = new VerificationCache({ ttlMs: 1000, maxEntries: 10, clock });
    const b = new VerificationCache({ ttlMs: 1000, maxEntries: 10, clock });
    expect(a.mac('u', 'p', 'h').equals(b.mac('u', 'p', 'h'))).toBe(false);
    // Length-prefixed fields: moving a character between fields changes the MAC.
    expect(a.mac('ab', 'c', 'h').equals(a.mac('a', 'bc', 'h'))).toBe(false);
  });

  it('is bounded: the oldest entry goes first', () => {
    const clock = new ManualClock();
    const cache = new VerificationCache({ ttlMs: 60_000, maxEntries: 3, clock });
    const macs = ['u0', 'u1', 'u2', 'u3'].map((u) => [u, cache.mac(u, 'p', 'h')] as const);
    for (const [u, m] of macs) cache.remember(u, m);
    expect(cache.size).toBe(3);
    expect(cache.has('u0', macs[0]![1])).toBe(false);
    expect(cache.has('u3', macs[3]![1])).toBe(true);
  });

  it('clears, and stores nothing when turned off', () => {
    const clock = new ManualClock();
    const cache = new VerificationCache({ ttlMs: 60_000, maxEntries: 3, clock });
    cache.remember('u', cache.mac('u', 'p', 'h'));
    cache.clear();
    expect(cache.size).toBe(0);
    const off = new VerificationCache({ ttlMs: 60_000, maxEntries: 0, clock });
    off.remember('u', off.mac('u', 'p', 'h'));
    expect(off.size).toBe(0);
  });
});
