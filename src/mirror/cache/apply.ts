import { readdir, readFile, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { StorageLayout } from '../store/layout.js';
import { parseManifest, referencedDigests } from '../store/manifest-media.js';
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

async function unlinkIfPresent(file: string): Promise<boolean> {
  try {
    await unlink(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Every digest a manifest needs, read from disk (it may have arrived after the scan). */
async function closureFromDisk(layout: StorageLayout, inv: Inventory, digest: string, out: Set<string>): Promise<void> {
  if (out.has(digest)) return;
  out.add(digest);
  let refs = inv.manifests.get(digest)?.refs;
  if (!refs) {
    const bytes = await readFile(layout.manifestPath(digest)).catch(() => undefined);
    const doc = bytes && parseManifest(bytes);
    refs = doc ? referencedDigests(doc) : [];
  }
  for (const r of refs) if (typeof r === 'string') await closureFromDisk(layout, inv, r, out);
}

/**
 * Carries out a plan: tag records first, then manifest links and referrer descriptors, then manifests,
 * then blobs, so a reader never finds a tag whose content is already gone. Whatever was used during the
 * pass, and whatever a download is writing, is spared with everything it needs. Readers that already
 * opened a file keep reading it: unlinking does not take the bytes from an open file.
 */
export async function applyPlan(layout: StorageLayout, inv: Inventory, plan: Plan, guard: ApplyGuard): Promise<Applied> {
  const spare = new Set<string>();
  for (const key of guard.touched) {
    if (key.startsWith('blob:')) spare.add(key.slice(5));
    else if (key.startsWith('manifest:')) await closureFromDisk(layout, inv, key.slice(9), spare);
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
      await unlinkIfPresent(layout.tagPath(root.repo, root.tag));
      forgotten.push(key);
    }
    units.push({ root, reason });
  }
  for (const r of skipped) for (const d of r.closure) await closureFromDisk(layout, inv, d, spare);

  const touchedDirs = new Set<string>();
  for (const { entry, digest } of plan.links) {
    if (spare.has(digest)) continue;
    const file = layout.manifestLinkPath(entry.repo, digest);
    if (await unlinkIfPresent(file)) touchedDirs.add(path.dirname(file));
  }
  for (const file of plan.referrerFiles) {
    const digest = `${path.basename(path.dirname(path.dirname(file)))}:${path.basename(file, '.json')}`;
    if (spare.has(digest)) continue;
    if (await unlinkIfPresent(file)) touchedDirs.add(path.dirname(file));
  }
  for (const { root } of units) if (root.tag !== undefined) touchedDirs.add(path.dirname(layout.tagPath(root.repo, root.tag)));

  const files = Object.fromEntries(REASONS.map((r) => [r, 0])) as Record<EvictionReason, number>;
  const bytes = Object.fromEntries(REASONS.map((r) => [r, 0])) as Record<EvictionReason, number>;
  const deleted = { blob: 0, manifest: 0 };
  const ordered = [...plan.content.filter((c) => c.entry.kind === 'manifest'), ...plan.content.filter((c) => c.entry.kind === 'blob')];
  for (const { entry, reason } of ordered) {
    if (spare.has(entry.digest) || guard.isFetching(entry.digest)) {
      spared++;
      continue;
    }
    const file = entry.kind === 'blob' ? layout.blobPath(entry.digest) : layout.manifestPath(entry.digest);
    if (await unlinkIfPresent(file)) {
      deleted[entry.kind]++;
      files[reason]++;
      bytes[reason] += entry.size;
    }
    forgotten.push(entry.kind === 'blob' ? accessKey.blob(entry.digest) : accessKey.manifest(entry.digest));
  }
  await pruneEmptyDirs(layout.repositoriesDir, touchedDirs);
  return { units, files, bytes, spared, deleted, forgotten };
}

/** Removes directories left empty, from each one up to (not including) the repositories root. */
async function pruneEmptyDirs(stopAt: string, dirs: Set<string>): Promise<void> {
  const sorted = [...dirs].sort((a, b) => b.length - a.length);
  for (let dir of sorted) {
    while (dir.startsWith(stopAt + path.sep)) {
      try {
        if ((await readdir(dir)).length > 0) break;
        await rmdir(dir);
      } catch {
        break; // gone already, or written to meanwhile
      }
      dir = path.dirname(dir);
    }
  }
}
