import bcrypt from 'bcryptjs';
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/common/clock.js';
import { silentLogger } from '../../../../src/common/logger.js';
import { Authenticator, type PasswordVerifier } from '../../../../src/mirror/auth/authenticator.js';
import type { UserSource } from '../../../../src/mirror/auth/htpasswd-file.js';
import { VerificationCache } from '../../../../src/mirror/auth/verification-cache.js';
import { Semaphore } from '../../../../src/mirror/limits/semaphore.js';

class MemoryUsers implements UserSource {
  private readonly events = new EventEmitter();
  constructor(public users: Map<string, string>) {}
  hashOf(user: string): string | undefined {
    return this.users.get(user);
  }
  onChange(listener: () => void): void {
    this.events.on('change', listener);
  }
  replace(users: Map<string, string>): void {
    this.users = users;
    this.events.emit('change');
  }
}

function setup(opts: { anonymousRead?: boolean; ttlMs?: number; maxConcurrent?: number } = {}) {
  const clock = new ManualClock();
  const users = new MemoryUsers(new Map([['alice', bcrypt.hashSync('right', 4)]]));
  const calls: string[] = [];
  const verify: PasswordVerifier = async (password, hash) => {
    calls.push(hash);
    return bcrypt.compare(password, hash);
  };
  const cache = new VerificationCache({ ttlMs: opts.ttlMs ?? 60_000, maxEntries: 100, clock });
  const limiter = new Semaphore({ max: opts.maxConcurrent ?? 4, maxQueued: 64, queueTimeoutMs: 10_000, what: 'too many checks' });
  const auth = new Authenticator({ users, cache, verify, limiter, logger: silentLogger(), anonymousRead: opts.anonymousRead ?? false });
  return { auth, users, calls, clock, cache };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as { code: string }).code;
  }
  return 'none';
}

describe('Authenticator', () => {
  it('accepts the right password, refuses a wrong one and an unknown user alike', async () => {
    const { auth, calls } = setup();
    expect(await auth.authenticate({ username: 'alice', password: 'right' })).toEqual({ kind: 'user', user: 'alice' });
    expect(await codeOf(auth.authenticate({ username: 'alice', password: 'wrong' }))).toBe('UNAUTHORIZED');
    expect(await codeOf(auth.authenticate({ username: 'mallory', password: 'right' }))).toBe('UNAUTHORIZED');
    // The unknown user still paid a bcrypt check (against a dummy hash): no user enumeration by timing.
    expect(calls).toHaveLength(3);
  });

  it('requires credentials unless anonymous read is on; sent credentials are still checked', async () => {
    expect(await codeOf(setup().auth.authenticate(undefined))).toBe('UNAUTHORIZED');
    const open = setup({ anonymousRead: true }).auth;
    expect(await open.authenticate(undefined)).toEqual({ kind: 'anonymous' });
    expect(await codeOf(open.authenticate({ username: 'alice', password: 'wrong' }))).toBe('UNAUTHORIZED');
  });

  it('pays bcrypt once for 40 simultaneous logins, then not at all within the TTL', async () => {
    const { auth, calls, clock } = setup();
    const all = await Promise.all(Array.from({ length: 40 }, () => auth.authenticate({ username: 'alice', password: 'right' })));
    expect(all.every((p) => p.kind === 'user')).toBe(true);
    expect(calls).toHaveLength(1);
    await auth.authenticate({ username: 'alice', password: 'right' });
    expect(calls).toHaveLength(1);
    clock.advance(60_000);
    await auth.authenticate({ username: 'alice', password: 'right' });
    expect(calls).toHaveLength(2);
  });

  it('never caches a failure', async () => {
    const { auth, calls } = setup();
    for (let i = 0; i < 3; i++) expect(await codeOf(auth.authenticate({ username: 'alice', password: 'wrong' }))).toBe('UNAUTHORIZED');
    expect(calls).toHaveLength(3);
  });

  it('forgets cached checks when the users change: a changed password stops working at once', async () => {
    const { auth, users, calls } = setup();
    await auth.authenticate({ username: 'alice', password: 'right' });
    users.replace(new Map([['alice', bcrypt.hashSync('new', 4)]]));
    expect(await codeOf(auth.authenticate({ username: 'alice', password: 'right' }))).toBe('UNAUTHORIZED');
    expect(await auth.authenticate({ username: 'alice', password: 'new' })).toEqual({ kind: 'user', user: 'alice' });
    expect(calls).toHaveLength(3);
  });

  it('bounds simultaneous bcrypt checks and refuses with 429 when the queue is full', async () => {
    const clock = new ManualClock();
    const users = new MemoryUsers(new Map([['alice', bcrypt.hashSync('right', 4)]]));
    let running = 0;
    let peak = 0;
    const verify: PasswordVerifier = async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 20));
      running--;
      return false;
    };
    const limiter = new Semaphore({ max: 2, maxQueued: 3, queueTimeoutMs: 10_000, what: 'too many checks' });
    const auth = new Authenticator({ users, cache: new VerificationCache({ ttlMs: 1, maxEntries: 1, clock }), verify, limiter, logger: silentLogger(), anonymousRead: false });
    const codes = await Promise.all(Array.from({ length: 8 }, (_, i) => codeOf(auth.authenticate({ username: 'alice', password: `guess${i}` }))));
    expect(peak).toBe(2);
    expect(codes.filter((c) => c === 'UNAUTHORIZED')).toHaveLength(5);
    expect(codes.filter((c) => c === 'TOOMANYREQUESTS')).toHaveLength(3);
  });
});
