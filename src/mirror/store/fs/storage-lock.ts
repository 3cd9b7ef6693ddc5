import { randomBytes } from 'node:crypto';
import { readFile, rm, utimes, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { MirrorgateError } from '../../../common/errors.js';
import { writeFileAtomic } from './atomic-file.js';
import type { StorageClaim, StorageHolder, StorageOwner } from '../storage.js';
import type { StorageLayout } from './layout.js';
import { processAlive } from './process-alive.js';

interface LockFile extends StorageHolder {
  token: string;
}

/** A holder on another host refreshes the lock's mtime at least this often; older means it is gone. */
export const LOCK_HEARTBEAT_MS = 30_000;
const LOCK_STALE_MS = 4 * LOCK_HEARTBEAT_MS;

/** The current holder, when one is alive (same host: its pid runs; another host: the lock is fresh). */
export async function currentHolder(layout: StorageLayout): Promise<LockFile | undefined> {
  const file = layout.lockPath;
  let lock: LockFile;
  let mtime: number;
  try {
    lock = JSON.parse(await readFile(file, 'utf8')) as LockFile;
    mtime = (await stat(file)).mtimeMs;
  } catch {
    return undefined;
  }
  if (lock.hostname === hostname()) return processAlive(lock.pid) ? lock : undefined;
  return Date.now() - mtime < LOCK_STALE_MS ? lock : undefined;
}

/**
 * Marks the storage directory as in use. The mirror refuses to start while `mirrorgate gc` runs on the
 * directory; `gc` refuses while a mirror or another gc holds it (unless forced). A crashed holder's lock
 * is ignored: on the same host its pid is gone, elsewhere its heartbeat stops.
 */
export async function acquireStorageLock(layout: StorageLayout, owner: StorageOwner, opts: { force?: boolean } = {}): Promise<StorageClaim> {
  const holder = await currentHolder(layout);
  if (holder && !opts.force && (owner === 'gc' || holder.owner === 'gc') && !(holder.pid === process.pid && holder.hostname === hostname())) {
    throw new MirrorgateError(
      'STORAGE_LOCKED',
      `storage ${layout.root} is in use by ${holder.owner === 'gc' ? 'mirrorgate gc' : 'a running mirror'} (pid ${holder.pid} on ${holder.hostname}, since ${new Date(holder.since).toISOString()})`,
    );
  }
  const token = randomBytes(8).toString('hex');
  const doc: LockFile = { owner, pid: process.pid, hostname: hostname(), token, since: Date.now() };
  const file = layout.lockPath;
  await writeFileAtomic(file, JSON.stringify(doc), layout.tmpDir);
  const mine = async (): Promise<boolean> => {
    try {
      return (JSON.parse(await readFile(file, 'utf8')) as LockFile).token === token;
    } catch {
      return false;
    }
  };
  return {
    async heartbeat() {
      if (await mine()) await utimes(file, new Date(), new Date()).catch(() => undefined);
    },
    async release() {
      if (await mine()) await rm(file, { force: true });
    },
  };
}
