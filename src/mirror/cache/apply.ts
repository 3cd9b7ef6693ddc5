import { MANIFEST_MAX_BYTES, parseManifest, referencedDigests } from '../store/manifest-media.js';
import { readSmallContent } from '../store/small-content.js';
import type { Storage } from '../store/storage.js';
import { accessKey } from './access-keys.js';
import type { Inventory } from './inventory.js';
import type { EvictionReason, Plan, Root } from './plan.js';

/** What may not be removed right now: content used during the pass, downloads in progress. */
export interface ApplyGuard {
  /** Access keys touched since the pass began. */
  touched: ReadonlySet<string>;
  isFetching(digest: string): boolean;
}

export interface Applied {
  /** Units removed, with their reason. */
  units: { root: Root; reason: EvictionReason }[];
  /** Files deleted and bytes freed per reason. */
  files: Record<EvictionReason, number>;
  bytes: Record<EvictionReason, number>;
  /** Units and content files the plan named but the pass left alone (used or fetched meanwhile). */
  spared: number;
  /** Content files deleted, by kind. */
  deleted: { blob: number; manifest: number };
  /** Access keys of what is gone. */
  forgotten: string[];
}

const REASONS: EvictionReason[] = ['retention', 'size', 'free_space', 'unreferenced'];

/** Every digest a manifest needs, read from storage (it may have arrived after the scan). */
async function closureOf(storage: Pick<Storage, 'manifests'>, inv: Inventory, digest: string, out: Set<string>): Promise<void> {
  if (out.has(digest)) return;
  out.add(digest);
  let refs = inv.manifests.get(digest)?.refs;
  if (!refs) {
    const bytes = await readSmallContent(storage.manifests, digest, MANIFEST_MAX_BYTES).catch(() => undefined);
    const doc = bytes && parseManifest(bytes);
    refs = doc ? referencedDigests(doc) : [];
  }
  for (const r of refs) if (typeof r === 'string') await closureOf(storage, inv, r, out);
}

/**
 * Carries out a plan: tag records first, then links and referrer records, then manifests, then blobs, so
 * a reader never finds a tag whose content is already gone. Whatever was used during the pass, and
 * whatever a download is writing, is spared with everything it needs. Readers that already opened an item
 * keep reading it: a delete does not take the bytes from a reader.
 */
export async function applyPlan(storage: Pick<Storage, 'blobs' | 'manifests' | 'metadata'>, inv: Inventory, plan: Plan, guard: ApplyGuard): Promise<Applied> {
  const { metadata } = storage;
  const spare = new Set<string>();
  for (const key of guard.touched) {
    if (key.startsWith('blob:')) spare.add(key.slice(5));
    else if (key.startsWith('manifest:')) await closureOf(storage, inv, key.slice(9), spare);
  }
  const units: Applied['units'] = [];
  const forgotten: string[] = [];
  let spared = 0;
  const skipped: Root[] = [];
  for (const { root, reason } of plan.evict) {
    const key = root.tag !== undefined ? accessKey.tag(root.repo, root.tag) : accessKey.manifest(root.digest);
    if (guard.touched.has(key) || spare.has(root.digest)) {
      skipped.push(root);
      spared++;
      continue;
    }
    if (root.tag !== undefined) {
      await metadata.deleteTag(root.repo, root.tag);
      forgotten.push(key);
    }
    units.push({ root, reason });
  }
  for (const r of skipped) for (const d of r.closure) await closureOf(storage, inv, d, spare);

  for (const { entry, kind, digest } of plan.links) {
    if (!spare.has(digest)) await metadata.unlink(entry.repo, kind, digest);
  }
  for (const { entry, subject, digest } of plan.referrers) {
    if (!spare.has(digest)) await metadata.deleteReferrer(entry.repo, subject, digest);
  }

  const files = Object.fromEntries(REASONS.map((r) => [r, 0])) as Record<EvictionReason, number>;
  const bytes = Object.fromEntries(REASONS.map((r) => [r, 0])) as Record<EvictionReason, number>;
  const deleted = { blob: 0, manifest: 0 };
  const ordered = [...plan.content.filter((c) => c.entry.kind === 'manifest'), ...plan.content.filter((c) => c.entry.kind === 'blob')];
  for (const { entry, reason } of ordered) {
    if (spare.has(entry.digest) || guard.isFetching(entry.digest)) {
      spared++;
      continue;
    }
    const store = entry.kind === 'blob' ? storage.blobs : storage.manifests;
    if (await store.delete(entry.digest)) {
      deleted[entry.kind]++;
      files[reason]++;
      bytes[reason] += entry.size;
    }
    forgotten.push(entry.kind === 'blob' ? accessKey.blob(entry.digest) : accessKey.manifest(entry.digest));
  }
  return { units, files, bytes, spared, deleted, forgotten };
}
