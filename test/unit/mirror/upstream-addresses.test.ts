import { describe, expect, it } from 'vitest';
import { isPublicAddress } from '../../../src/mirror/upstream/addresses.js';

describe('isPublicAddress', () => {
  it('refuses loopback, private, link-local, unspecified and multicast addresses, in every spelling', () => {
    for (const a of [
      '127.0.0.1', '127.1.2.3', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
      '224.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1', 'fd00::1', 'fc00::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:7f00:1',
      '::ffff:169.254.169.254', '::ffff:a00:1', 'not an address',
    ]) {
      expect(isPublicAddress(a), a).toBe(false);
    }
  });

  it('accepts public addresses', () => {
    for (const a of ['8.8.8.8', '104.16.0.1', '172.32.0.1', '2606:4700::1', '::ffff:8.8.8.8']) expect(isPublicAddress(a), a).toBe(true);
  });
});
