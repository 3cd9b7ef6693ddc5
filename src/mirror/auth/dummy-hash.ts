import { randomBytes } from 'node:crypto';
import bcrypt from 'bcryptjs';

/** Used when there are no hashes to copy the cost from: the cost `mirrorgate htpasswd add` uses. */
const DEFAULT_COST = 10;

/** The cost most of the hashes have (a tie goes to the higher cost), or 10 when there are none. */
export function commonCost(hashes: Iterable<string>): number {
  const counts = new Map<number, number>();
  for (const h of hashes) {
    const cost = Number(h.slice(4, 6));
    counts.set(cost, (counts.get(cost) ?? 0) + 1);
  }
  let best = DEFAULT_COST;
  let most = 0;
  for (const [cost, n] of counts) if (n > most || (n === most && cost > best)) [best, most] = [cost, n];
  return best;
}

/**
 * A bcrypt hash of the given cost that no password matches: a random salt and a random digest, never
 * computed from a password. Checking a password against it runs the full key schedule of that cost, so it
 * takes as long as checking a real hash of that cost, and making it costs no bcrypt work at all.
 */
export function dummyHash(cost: number): string {
  return `$2b$${String(cost).padStart(2, '0')}$${bcrypt.encodeBase64(randomBytes(16), 16)}${bcrypt.encodeBase64(randomBytes(23), 23)}`;
}
