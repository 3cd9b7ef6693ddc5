import bcrypt from 'bcryptjs';
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/common/clock.js';
import { silentLogger } from '../../../../src/common/logger.js';
import { Authenticator, type PasswordVerifier } from '../../../../src/mirror/auth/authenticator.js';
import { dummyHash } from '../../../../src/mirror/auth/dummy-hash.js';
import { FailedLogins, type FailedLoginLimits } from '../../../../src/mirror/auth/failed-logins.js';
import type { UserSource } from '../../../../src/mirror/auth/htpasswd-file.js';
import { VerificationCache } from '../../../../src/mirror/auth/verification-cache.js';

class MemoryUsers implements UserSource {
  private readonly events = new EventEmitter();
  readonly dummy = dummyHash(4);
  constructor(public users: Map<string, string>) {}
  hashOf(user: string): string | undefined {
    return this.users.get(user);
  }
  dummyHash(): string {
    return this.dummy;
  }
  onChange(listener: () => void): void {
    this.events.on('change', listener);
  }
  replace(users: Map<string, string>): void {
    this.users = users;
    this.events.emit('change');
  }
}

const NO_LIMITS: FailedLoginLimits = { perAddress: 0, perUser: 0, windowMs: 60_000, maxKeys: 100 };

function setup(opts: { anonymousRead?: boolean; ttlMs?: number; limits?: Partial<FailedLoginLimits>; verify?: PasswordVerifier; refusalDelayMs?: number } = {}) {
  const clock = new ManualClock();
  const users = new MemoryUsers(new Map([['alice', bcrypt.hashSync('right', 4)]]));
  const calls: string[] = [];
  const verify: PasswordVerifier = async (password, hash) => {
    calls.push(hash);
    return (opts.verify ?? bcrypt.compare)(password, hash);
  };
  const cache = new VerificationCache({ ttlMs: opts.ttlMs ?? 60_000, maxEntries: 100, clock });
  const failures = new FailedLogins({ ...NO_LIMITS, ...opts.limits }, { clock, logger: silentLogger() });
  const auth = new Authenticator({ users, cache, verify, failures, refusalDelayMs: opts.refusalDelayMs ?? 0, logger: silentLogger(), anonymousRead: opts.anonymousRead ?? false });
  return { auth, users, calls, clock, cache };
}

const ADDR = '10.0.0.1';

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
    expect(await auth.authenticate({ username: 'alice', password: 'right' }, ADDR)).toEqual({ kind: 'user', user: 'alice' });
    expect(await codeOf(auth.authenticate({ username: 'alice', password: 'wrong' }, ADDR))).toBe('UNAUTHORIZED');
    expect(await codeOf(auth.authenticate({ username: 'mallory', password: 'right' }, ADDR))).toBe('UNAUTHORIZED');
    // The unknown user still paid a bcrypt check (against a dummy hash): no user enumeration by timing.
    expect(calls).toHaveLength(3);
  });

  it('requires credentials unless anonymous read is on; sent credentials are still checked', async () => {
    expect(await codeOf(setup().auth.authenticate(undefined, ADDR))).toBe('UNAUTHORIZED');
    const open = setup({ anonymousRead: true }).auth;
    expect(await open.authenticate(undefined, ADDR)).toEqual({ kind: 'anonymous' });
    expect(await codeOf(open.authenticate({ username: 'alice', password: 'wrong' }, ADDR))).toBe('UNAUTHORIZED');
  });

  it('pays bcrypt once for 40 simultaneous logins, then not at all within the TTL', async () => {
    const { auth, calls, clock } = setup();
    const all = await Promise.all(Array.from({ length: 40 }, () => auth.authenticate({ username: 'alice', password: 'right' }, ADDR)));
    expect(all.every((p) => p.kind === 'user')).toBe(true);
    expect(calls).toHaveLength(1);
    await auth.authenticate({ username: 'alice', password: 'right' }, ADDR);
    expect(calls).toHaveLength(1);
    clock.advance(60_000);
    await auth.authenticate({ username: 'alice', password: 'right' }, ADDR);
    expect(calls).toHaveLength(2);
  });

  it('never caches a failure', async () => {
    const { auth, calls } = setup();
    for (let i = 0; i < 3; i++) expect(await codeOf(auth.authenticate({ username: 'alice', password: 'wrong' }, ADDR))).toBe('UNAUTHORIZED');
    expect(calls).toHaveLength(3);
  });

  it('forgets cached checks when the users change: a changed password stops working at once', async () => {
    const { auth, users, calls } = setup();
    await auth.authenticate({ username: 'alice', password: 'right' }, ADDR);
    users.replace(new Map([['alice', bcrypt.hashSync('new', 4)]]));
    expect(await codeOf(auth.authenticate({ username: 'alice', password: 'right' }, ADDR))).toBe('UNAUTHORIZED');
    expect(await auth.authenticate({ username: 'alice', password: 'new' }, ADDR)).toEqual({ kind: 'user', user: 'alice' });
    expect(calls).toHaveLength(3);
  });

  it('checks an unknown user against the user source\'s dummy hash', async () => {
    const { auth, users, calls } = setup();
    expect(await codeOf(auth.authenticate({ username: 'mallory', password: 'right' }, ADDR))).toBe('UNAUTHORIZED');
    expect(calls).toEqual([users.dummy]);
  });

  it('refuses a password longer than 72 bytes without bcrypt, even when its first 72 bytes are right', async () => {
    const { auth, users, calls } = setup();
    const long = 'p'.repeat(72);
    users.users.set('long', bcrypt.hashSync(long, 4));
    expect(await auth.authenticate({ username: 'long', password: long }, ADDR)).toEqual({ kind: 'user', user: 'long' });
    expect(calls).toHaveLength(1);
    for (const password of [`${long}x`, `${'p'.repeat(71)}é`]) {
      expect(await codeOf(auth.authenticate({ username: 'long', password }, ADDR))).toBe('UNAUTHORIZED');
      expect(await codeOf(auth.authenticate({ username: 'nobody', password }, ADDR))).toBe('UNAUTHORIZED');
    }
    expect(calls).toHaveLength(1);
  });

  it('counts failures, not checks: a right password gives its reservation back, a spent budget runs no bcrypt', async () => {
    const { auth, calls } = setup({ limits: { perAddress: 2 } });
    for (let i = 0; i < 5; i++) expect(await auth.authenticate({ username: 'alice', password: 'right' }, ADDR)).toEqual({ kind: 'user', user: 'alice' });
    expect(await codeOf(auth.authenticate({ username: 'alice', password: 'wrong' }, ADDR))).toBe('UNAUTHORIZED');
    expect(await codeOf(auth.authenticate({ username: 'mallory', password: 'wrong' }, ADDR))).toBe('UNAUTHORIZED');
    const before = calls.length;
    let refusal: unknown;
    try {
      await auth.authenticate({ username: 'mallory', password: 'again' }, ADDR);
    } catch (err) {
      refusal = err;
    }
    expect(refusal).toMatchObject({ code: 'TOOMANYREQUESTS', status: 429, headers: { 'retry-after': '30' } });
    expect(calls).toHaveLength(before);
    // The success cache still answers for alice; another address still has its budget.
    expect(await auth.authenticate({ username: 'alice', password: 'right' }, ADDR)).toEqual({ kind: 'user', user: 'alice' });
    expect(await codeOf(auth.authenticate({ username: 'mallory', password: 'again' }, '10.0.0.2'))).toBe('UNAUTHORIZED');
  });

  it('charges simultaneous identical checks once (they share one bcrypt run)', async () => {
    const { auth, calls } = setup({ limits: { perUser: 1 } });
    const codes = await Promise.all(Array.from({ length: 20 }, () => codeOf(auth.authenticate({ username: 'alice', password: 'wrong' }, ADDR))));
    expect(codes).toEqual(Array(20).fill('UNAUTHORIZED'));
    expect(calls).toHaveLength(1);
    expect(await codeOf(auth.authenticate({ username: 'alice', password: 'other' }, ADDR))).toBe('TOOMANYREQUESTS');
  });

  it('gives the reservation back when the check could not run', async () => {
    let broken = true;
    const { auth } = setup({
      limits: { perAddress: 1 },
      verify: async (password, hash) => {
        if (broken) throw new Error('no thread');
        return bcrypt.compare(password, hash);
      },
    });
    await expect(auth.authenticate({ username: 'alice', password: 'wrong' }, ADDR)).rejects.toThrow('no thread');
    broken = false;
    expect(await codeOf(auth.authenticate({ username: 'alice', password: 'wrong' }, ADDR))).toBe('UNAUTHORIZED');
    expect(await codeOf(auth.authenticate({ username: 'alice', password: 'wrong' }, ADDR))).toBe('TOOMANYREQUESTS');
  });

  it('answers a refused login only after the refusal delay', async () => {
    const { auth } = setup({ limits: { perAddress: 1 }, refusalDelayMs: 200 });
    expect(await codeOf(auth.authenticate({ username: 'alice', password: 'wrong' }, ADDR))).toBe('UNAUTHORIZED');
    const started = performance.now();
    expect(await codeOf(auth.authenticate({ username: 'alice', password: 'wrong' }, ADDR))).toBe('TOOMANYREQUESTS');
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
  });
});
