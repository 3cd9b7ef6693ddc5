import type { PendingWrite } from '../store/content-store.js';
import type { Storage } from '../store/storage.js';

/** A write nobody is doing any more: what a crash or a killed process left behind. */
export interface StaleWrite extends PendingWrite {
  store: 'blobs' | 'manifests';
}

/**
 * Writes not written to for `maxAgeMs` and not held by a running download. A running download writes at
 * least once per body timeout, so a write this old belongs to nobody; upload sessions' writes are kept
 * (a client may resume them; they expire with their session).
 */
export async function findStaleWrites(
  storage: Pick<Storage, 'blobs' | 'manifests' | 'metadata'>,
  opts: { now: number; maxAgeMs: number; inUse?: (writeId: string) => boolean },
): Promise<StaleWrite[]> {
  const uploads = new Set((await storage.metadata.listUploads()).map((u) => u.writeId));
  const out: StaleWrite[] = [];
  for (const store of ['blobs', 'manifests'] as const) {
    for (const w of await storage[store].listWrites()) {
      if (opts.now - w.modifiedAt < opts.maxAgeMs || opts.inUse?.(w.id) || uploads.has(w.id)) continue;
      out.push({ ...w, store });
    }
  }
  return out;
}

export async function removeStaleWrites(storage: Pick<Storage, 'blobs' | 'manifests'>, writes: StaleWrite[]): Promise<number> {
  let bytes = 0;
  for (const w of writes) {
    await storage[w.store].deleteWrite(w.id);
    bytes += w.size;
  }
  return bytes;
}
