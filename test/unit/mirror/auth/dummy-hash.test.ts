import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { commonCost, dummyHash } from '../../../../src/mirror/auth/dummy-hash.js';

describe('dummy hash', () => {
  it('takes the cost most hashes have (ties to the higher), 10 without hashes', () => {
    const h = (cost: number): string => `$2y$${String(cost).padStart(2, '0')}$${'a'.repeat(53)}`;
    expect(commonCost([h(4), h(12), h(4)])).toBe(4);
    expect(commonCost([h(11), h(12)])).toBe(12);
    expect(commonCost([])).toBe(10);
  });

  it('is a well-formed bcrypt hash of that cost that matches no password and costs a real check', () => {
    const d = dummyHash(5);
    expect(d).toMatch(/^\$2b\$05\$[./A-Za-z0-9]{53}$/);
    expect(bcrypt.getRounds(d)).toBe(5);
    expect(dummyHash(5)).not.toBe(d);
    for (const guess of ['', 'password', d]) expect(bcrypt.compareSync(guess, d)).toBe(false);
    // The check runs the full key schedule: a cost-12 dummy takes far longer than a cost-4 one.
    const time = (hash: string): number => {
      const started = performance.now();
      bcrypt.compareSync('guess', hash);
      return performance.now() - started;
    };
    expect(time(dummyHash(12))).toBeGreaterThan(time(dummyHash(4)) * 8);
  });
});
