/**
 * A process holding leases on a storage directory, for the cross-process lease tests. Commands on stdin,
 * one per line, answers as JSON lines on stdout:
 *   acquire <name> <ttlMs>       -> {"acquired":true|false}
 *   renew <name> <ttlMs>         -> {"renewed":true|false}
 *   release <name>               -> {"released":true}
 *   race <prefix> <count> <ttl>  -> {"won":[indexes of <prefix><i> acquired]} (all at once)
 */
import { createInterface } from 'node:readline';
import { systemClock } from '../../src/common/clock.js';
import { FsStorage } from '../../src/mirror/store/fs/fs-storage.js';
import type { Lease } from '../../src/mirror/store/metadata-store.js';

const storage = new FsStorage(process.argv[2]!, systemClock, { shared: true });
const held = new Map<string, Lease>();
const say = (doc: unknown): void => void process.stdout.write(`${JSON.stringify(doc)}\n`);

for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, name = '', a = '', b = ''] = line.trim().split(/\s+/);
  if (cmd === 'acquire') {
    const lease = await storage.metadata.acquireLease(name, `pid-${process.pid}`, Number(a));
    if (lease) held.set(name, lease);
    say({ acquired: lease !== undefined });
  } else if (cmd === 'renew') {
    say({ renewed: (await held.get(name)?.renew(Number(a))) ?? false });
  } else if (cmd === 'release') {
    await held.get(name)?.release();
    say({ released: true });
  } else if (cmd === 'race') {
    const leases = await Promise.all(Array.from({ length: Number(a) }, (_, i) => storage.metadata.acquireLease(`${name}${i}`, `pid-${process.pid}`, Number(b))));
    say({ won: leases.flatMap((l, i) => (l ? [i] : [])) });
  }
}
