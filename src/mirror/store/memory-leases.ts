import { randomBytes } from 'node:crypto';
import type { Clock } from '../../common/clock.js';
import type { Lease } from './metadata-store.js';

interface Held {
  holder: string;
  token: string;
  expiresAt: number;
}

/**
 * Leases held in this process's memory: correct for every worker of one process on one store. Stores shared
 * by several processes (Redis) keep them where all of them see them.
 */
export class MemoryLeases {
  private readonly held = new Map<string, Held>();

  constructor(private readonly clock: Clock) {}

  acquire(name: string, holder: string, ttlMs: number): Lease | undefined {
    const now = this.clock.now();
    const current = this.held.get(name);
    if (current && current.expiresAt > now) return undefined;
    const token = randomBytes(8).toString('hex');
    this.held.set(name, { holder, token, expiresAt: now + ttlMs });
    const mine = (): boolean => {
      const h = this.held.get(name);
      return h?.token === token && h.expiresAt > this.clock.now();
    };
    return {
      name,
      holder,
      renew: async (ttl: number) => {
        if (!mine()) return false;
        this.held.set(name, { holder, token, expiresAt: this.clock.now() + ttl });
        return true;
      },
      release: async () => {
        if (this.held.get(name)?.token === token) this.held.delete(name);
      },
    };
  }
}
