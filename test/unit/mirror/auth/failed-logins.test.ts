import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/common/clock.js';
import { MirrorgateError } from '../../../../src/common/errors.js';
import { addressKey } from '../../../../src/mirror/auth/client-address.js';
import { FailedLogins } from '../../../../src/mirror/auth/failed-logins.js';
import { captureLogs } from '../../../helpers/log-capture.js';

function refusal(fn: () => unknown): MirrorgateError | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof MirrorgateError) return err;
    throw err;
  }
  return undefined;
}

function setup(limits: { perAddress: number; perUser: number; maxKeys?: number }) {
  const clock = new ManualClock();
  const logs = captureLogs();
  const f = new FailedLogins({ windowMs: 60_000, maxKeys: 1000, ...limits }, { clock, logger: logs.logger });
  return { f, clock, logs };
}

describe('FailedLogins', () => {
  it('refuses an address that spent its budget with 429 and Retry-After, whatever the user', () => {
    const { f, clock } = setup({ perAddress: 3, perUser: 0 });
    for (let i = 0; i < 3; i++) f.reserve('10.0.0.1', `user${i}`);
    const r = refusal(() => f.reserve('10.0.0.1', 'someone-else'));
    expect(r).toMatchObject({ code: 'TOOMANYREQUESTS', status: 429, headers: { 'retry-after': '20' } });
    expect(refusal(() => f.reserve('10.0.0.2', 'user0'))).toBeUndefined();
    clock.advance(20_000);
    expect(refusal(() => f.reserve('10.0.0.1', 'user9'))).toBeUndefined();
  });

  it('refuses a user that spent its budget from any address, known user or not', () => {
    const { f } = setup({ perAddress: 100, perUser: 2 });
    f.reserve('10.0.0.1', 'alice');
    f.reserve('10.0.0.2', 'alice');
    expect(refusal(() => f.reserve('10.0.0.3', 'alice'))?.code).toBe('TOOMANYREQUESTS');
    expect(refusal(() => f.reserve('10.0.0.3', 'bob'))).toBeUndefined();
  });

  it('takes nothing from either budget when one refuses, and a reservation given back does not count', () => {
    const { f } = setup({ perAddress: 2, perUser: 1 });
    f.reserve('10.0.0.1', 'alice');
    expect(refusal(() => f.reserve('10.0.0.1', 'alice'))?.code).toBe('TOOMANYREQUESTS');
    f.reserve('10.0.0.1', 'bob'); // the refused attempt did not spend the address's second failure
    expect(refusal(() => f.reserve('10.0.0.1', 'carol'))?.code).toBe('TOOMANYREQUESTS');
    const f2 = setup({ perAddress: 1, perUser: 1 }).f;
    for (let i = 0; i < 10; i++) {
      const giveBack = f2.reserve('10.0.0.1', 'alice');
      giveBack();
      giveBack(); // idempotent
    }
    expect(refusal(() => f2.reserve('10.0.0.1', 'alice'))).toBeUndefined();
  });

  it('logs the first refusal of a spent budget, with address and user, not every one', () => {
    const { f, logs } = setup({ perAddress: 1, perUser: 0 });
    f.reserve('10.0.0.1', 'alice');
    for (let i = 0; i < 5; i++) refusal(() => f.reserve('10.0.0.1', 'alice'));
    const lines = logs.lines().filter((l) => l.msg === 'too many failed logins; refusing logins for a while');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ budget: 'address', address: '10.0.0.1', user: 'alice', retryAfter: 60 });
  });

  it('stays bounded when flooded with new addresses and user names', () => {
    const { f } = setup({ perAddress: 5, perUser: 5, maxKeys: 50 });
    for (let i = 0; i < 10_000; i++) f.reserve(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, `user-${i}-${'x'.repeat(1000)}`);
    const buckets = (f as unknown as { budgets: { buckets: { size: number } }[] }).budgets;
    expect(buckets.map((b) => b.buckets.size)).toEqual([50, 50]);
  });

  it('with both limits at 0, never refuses', () => {
    const { f } = setup({ perAddress: 0, perUser: 0 });
    for (let i = 0; i < 1000; i++) f.reserve('10.0.0.1', 'alice');
  });
});

describe('addressKey', () => {
  it('keys IPv4 as is, IPv4-mapped IPv6 as IPv4, and IPv6 by its /64', () => {
    expect(addressKey('10.1.2.3')).toBe('10.1.2.3');
    expect(addressKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(addressKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002:ffff::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('2001:DB8::')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('64:ff9b::192.0.2.1')).toBe('64:ff9b:0:0::/64');
    expect(addressKey(undefined)).toBe('unknown');
  });
});
