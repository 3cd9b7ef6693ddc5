import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/common/clock.js';
import { MemoryLeases } from '../../../../src/mirror/store/memory-leases.js';

describe('MemoryLeases', () => {
  it('grants a free name and refuses it while held, whoever asks', () => {
    const leases = new MemoryLeases(new ManualClock());
    const lease = leases.acquire('gc', 'p1', 1000);
    expect(lease).toMatchObject({ name: 'gc', holder: 'p1' });
    expect(leases.acquire('gc', 'p2', 1000)).toBeUndefined();
    expect(leases.acquire('gc', 'p1', 1000)).toBeUndefined();
    expect(leases.acquire('evict', 'p2', 1000)).toBeDefined();
  });

  it('expires exactly at its ttl; another holder takes over; the old lease is lost for good', async () => {
    const clock = new ManualClock();
    const leases = new MemoryLeases(clock);
    const old = leases.acquire('gc', 'p1', 1000)!;
    clock.advance(999);
    expect(leases.acquire('gc', 'p2', 1000)).toBeUndefined();
    clock.advance(1);
    const next = leases.acquire('gc', 'p2', 1000)!;
    expect(next.holder).toBe('p2');
    expect(await old.renew(1000)).toBe(false);
    await old.release();
    expect(leases.acquire('gc', 'p3', 1000)).toBeUndefined();
    // Expired with nobody taking over: renewing does not bring it back either.
    clock.advance(1000);
    expect(await next.renew(1000)).toBe(false);
    expect(leases.acquire('gc', 'p3', 1000)).toBeDefined();
  });

  it('renew extends from now by the new ttl', async () => {
    const clock = new ManualClock();
    const leases = new MemoryLeases(clock);
    const lease = leases.acquire('fetch', 'p1', 1000)!;
    clock.advance(900);
    expect(await lease.renew(5000)).toBe(true);
    clock.advance(4999);
    expect(leases.acquire('fetch', 'p2', 1000)).toBeUndefined();
    expect(await lease.renew(10)).toBe(true);
    clock.advance(10);
    expect(leases.acquire('fetch', 'p2', 1000)).toBeDefined();
    expect(await lease.renew(1000)).toBe(false);
  });

  it('release frees the name at once, is safe twice, and a released lease cannot be renewed', async () => {
    const leases = new MemoryLeases(new ManualClock());
    const lease = leases.acquire('gc', 'p1', 60_000)!;
    await lease.release();
    await lease.release();
    expect(await lease.renew(60_000)).toBe(false);
    const next = leases.acquire('gc', 'p2', 60_000)!;
    await lease.release(); // the old lease's release leaves the new holder's alone
    expect(leases.acquire('gc', 'p3', 60_000)).toBeUndefined();
    expect(await next.renew(60_000)).toBe(true);
  });

  it('instances do not share leases (one per store)', () => {
    const clock = new ManualClock();
    expect(new MemoryLeases(clock).acquire('gc', 'p1', 1000)).toBeDefined();
    expect(new MemoryLeases(clock).acquire('gc', 'p2', 1000)).toBeDefined();
  });
});
