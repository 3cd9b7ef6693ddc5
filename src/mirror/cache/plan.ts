import { isHosted } from '../hosted/hosted-names.js';
import type { LinkKind } from '../store/metadata-store.js';
import type { RepositoryRef } from '../store/types.js';
import { accessKey } from './access-keys.js';
import type { ContentEntry, Inventory, RepositoryEntry } from './inventory.js';
import { contentBytes } from './inventory.js';
import { applyRetention, policyFor, type RetentionPolicy } from './retention.js';

export type EvictionReason = 'retention' | 'size' | 'free_space' | 'unreferenced';

/**
 * A unit of eviction: a tag, or a manifest a repository holds without a tag (pulled by digest). Its
 * closure is the manifest, an index's child manifests, and every blob they reference.
 */
export interface Root {
  kind: 'tag' | 'manifest';
  repo: RepositoryRef;
  entry: RepositoryEntry;
  tag?: string;
  digest: string;
  lastUsed: number;
  /** Digests of the manifests and blobs it needs (itself included), whether or not they are stored. */
  closure: readonly string[];
  /** Kept by a retention policy's `keepTags`: evicted for size only when nothing else is left. */
  pinned: boolean;
  /** An image kept warm (`mirror.warm.images`): never removed, by retention, the size cap or the free-space floor. */
  kept: boolean;
}

export interface PlanInput {
  inventory: Inventory;
  now: number;
  /** Last access of an access-index key; undefined when unknown (the file's mtime is used). */
  lastAccess(key: string): number | undefined;
  policies: RetentionPolicy[];
  maxSize?: number | undefined;
  highWater: number;
  lowWater: number;
  /** Free space on the cache's file system and the floor it must stay above. */
  freeSpace?: { available: number; floor: number } | undefined;
  /** Unreferenced content used more recently than this is left alone. */
  unreferencedGrace: number;
  /**
   * Units never removed (images kept warm): `upstream/path:tag` for a tag, `upstream/path@digest` for a
   * manifest, whether the repository holds it under a tag or not.
   */
  keep?: ReadonlySet<string> | undefined;
}

export interface Plan {
  roots: Root[];
  /** Units removed; `bytes`: content freed because of this one (shared content goes with the last holder). */
  evict: { root: Root; reason: EvictionReason; detail: string; bytes: number }[];
  /** Content files to delete: nothing kept references them. */
  content: { entry: ContentEntry; reason: EvictionReason }[];
  /** Links to remove: what the repository no longer holds. */
  links: { entry: RepositoryEntry; kind: LinkKind; digest: string }[];
  /** Referrer records of manifests the repository no longer holds. */
  referrers: { entry: RepositoryEntry; subject: string; digest: string }[];
  sizeBefore: number;
  sizeAfter: number;
  /** The size eviction aimed for, when it ran. */
  target?: number;
}

export function rootLabel(root: Pick<Root, 'repo' | 'tag' | 'digest'>): string {
  const name = `${root.repo.upstream}/${root.repo.path}`;
  return root.tag !== undefined ? `${name}:${root.tag}` : `${name}@${root.digest}`;
}

/** Digests a manifest needs, itself included; follows index children. Memoized per manifest. */
function closures(inv: Inventory): (digest: string) => readonly string[] {
  const memo = new Map<string, readonly string[]>();
  const walk = (digest: string, seen: Set<string>): readonly string[] => {
    const cached = memo.get(digest);
    if (cached) return cached;
    const out = new Set<string>([digest]);
    const m = inv.manifests.get(digest);
    if (m) {
      seen.add(digest);
      for (const ref of m.refs) {
        if (seen.has(ref)) continue;
        for (const d of walk(ref, seen)) out.add(d);
      }
      seen.delete(digest);
    }
    const arr = [...out];
    memo.set(digest, arr);
    return arr;
  };
  return (digest) => walk(digest, new Set());
}

/** The eviction units of every repository, with their last use. */
export function findRoots(input: Pick<PlanInput, 'inventory' | 'lastAccess' | 'keep'>): Root[] {
  const { inventory: inv, lastAccess } = input;
  const closureOf = closures(inv);
  const keep = input.keep ?? new Set<string>();
  const kept = (root: Pick<Root, 'repo' | 'tag' | 'digest'>): boolean =>
    keep.has(rootLabel(root)) || (root.tag !== undefined && keep.has(rootLabel({ repo: root.repo, digest: root.digest })));
  const roots: Root[] = [];
  for (const entry of inv.repositories) {
    const repo = entry.repo;
    const reachable = new Set<string>();
    for (const t of entry.tags) {
      const closure = closureOf(t.digest);
      for (const d of closure) reachable.add(d);
      // A hosted tag's age is when it was pushed (what retention of a registry means); a cached one's, its last pull.
      const used = isHosted(repo) ? t.mtime : Math.max(lastAccess(accessKey.tag(repo, t.tag)) ?? t.mtime, lastAccess(accessKey.manifest(t.digest)) ?? 0);
      const root = { repo, tag: t.tag, digest: t.digest };
      roots.push({ kind: 'tag', ...root, entry, lastUsed: used, closure, pinned: false, kept: kept(root) });
    }
    // A linked manifest is a unit of its own unless a tag or another linked manifest (an index) holds it.
    const children = new Set<string>();
    for (const l of entry.links) for (const d of closureOf(l.digest)) if (d !== l.digest) children.add(d);
    for (const l of entry.links) {
      if (reachable.has(l.digest) || children.has(l.digest)) continue;
      const used = isHosted(repo) ? l.mtime : (lastAccess(accessKey.manifest(l.digest)) ?? l.mtime);
      roots.push({ kind: 'manifest', repo, entry, digest: l.digest, lastUsed: used, closure: closureOf(l.digest), pinned: false, kept: kept({ repo, digest: l.digest }) });
    }
  }
  return roots;
}

/**
 * Decides what one pass removes, without touching the disk: retention first, then least recently used
 * units until the cache is under its low-water mark (or above its free-space floor), then whatever no
 * remaining unit references. Kept units (warm images) stay whatever the cap. A content file goes only
 * when no remaining unit needs it, so an image is either complete or gone.
 */
export function planPass(input: PlanInput): Plan {
  const { inventory: inv, now } = input;
  const roots = findRoots(input);
  const refcount = new Map<string, number>();
  for (const r of roots) for (const d of r.closure) refcount.set(d, (refcount.get(d) ?? 0) + 1);
  const contentOf = (d: string): ContentEntry | undefined => inv.blobs.get(d) ?? inv.manifests.get(d);

  const evicted = new Set<Root>();
  const evict: Plan['evict'] = [];
  const content: Plan['content'] = [];
  const sizeBefore = contentBytes(inv);
  let freed = 0;
  const drop = (root: Root, reason: EvictionReason, detail: string): void => {
    if (evicted.has(root)) return;
    evicted.add(root);
    const item = { root, reason, detail, bytes: 0 };
    evict.push(item);
    for (const d of root.closure) {
      const n = refcount.get(d)! - 1;
      refcount.set(d, n);
      const entry = n === 0 ? contentOf(d) : undefined;
      if (entry) {
        content.push({ entry, reason });
        freed += entry.size;
        item.bytes += entry.size;
      }
    }
  };

  // Unreferenced to begin with (a crash between steps, an earlier version's leftovers, a blob fetched alone).
  const lastUse = (e: ContentEntry): number => input.lastAccess(e.kind === 'blob' ? accessKey.blob(e.digest) : accessKey.manifest(e.digest)) ?? e.mtime;
  for (const e of [...inv.blobs.values(), ...inv.manifests.values()]) {
    if ((refcount.get(e.digest) ?? 0) === 0 && now - lastUse(e) >= input.unreferencedGrace) {
      content.push({ entry: e, reason: 'unreferenced' });
      freed += e.size;
    }
  }

  // Retention, repository by repository.
  const byRepo = new Map<RepositoryEntry, Root[]>();
  for (const r of roots) byRepo.set(r.entry, [...(byRepo.get(r.entry) ?? []), r]);
  for (const [entry, repoRoots] of byRepo) {
    const policy = policyFor(input.policies, entry.repo);
    if (!policy) continue;
    const { remove, pinned } = applyRetention(policy, repoRoots.filter((r) => !r.kept), now);
    for (const p of pinned) p.pinned = true;
    for (const { item, reason } of remove) drop(item, 'retention', reason);
  }

  // Untagged manifests of hosted repositories (a tag moved on, a push by digest) go after the grace period,
  // unless they are referrers (signatures, SBOMs) of a manifest the repository keeps.
  for (const [entry, repoRoots] of byRepo) {
    if (!isHosted(entry.repo)) continue;
    const tagged = new Set<string>();
    for (const r of repoRoots) if (r.kind === 'tag' && !evicted.has(r)) for (const d of r.closure) tagged.add(d);
    const subjects = new Map(entry.referrers.map((ref) => [ref.digest, ref.subject]));
    for (const r of repoRoots) {
      if (r.kind !== 'manifest' || r.kept || now - r.lastUsed < input.unreferencedGrace) continue;
      const subject = subjects.get(r.digest);
      if (subject !== undefined && tagged.has(subject)) continue;
      drop(r, 'unreferenced', 'untagged manifest of a hosted repository');
    }
  }

  // Size cap and free-space floor: least recently used units first, pinned ones last, kept ones never. The cap is
  // the cache's: hosted repositories are never evicted for it, and content only they hold does not count toward it.
  const proxiedRefs = new Set<string>();
  const hostedRefs = new Set<string>();
  for (const r of roots) if (!evicted.has(r)) for (const d of r.closure) (isHosted(r.repo) ? hostedRefs : proxiedRefs).add(d);
  let hostedBytes = 0;
  for (const d of hostedRefs) if (!proxiedRefs.has(d)) hostedBytes += contentOf(d)?.size ?? 0;
  let target: number | undefined;
  let reason: EvictionReason = 'size';
  const current = sizeBefore - freed - hostedBytes;
  if (input.maxSize !== undefined && current > input.maxSize * input.highWater) target = Math.floor(input.maxSize * input.lowWater) + hostedBytes;
  if (input.freeSpace && input.freeSpace.available + freed < input.freeSpace.floor) {
    const byFloor = sizeBefore - Math.ceil(input.freeSpace.floor * 1.1 - input.freeSpace.available);
    if (target === undefined || byFloor < target) {
      target = Math.max(0, byFloor);
      reason = 'free_space';
    }
  }
  if (target !== undefined) {
    const candidates = roots
      .filter((r) => !evicted.has(r) && !isHosted(r.repo) && !r.kept)
      .sort((a, b) => Number(a.pinned) - Number(b.pinned) || a.lastUsed - b.lastUsed || rootLabel(a).localeCompare(rootLabel(b)));
    for (const r of candidates) {
      if (sizeBefore - freed <= target) break;
      drop(r, reason, `${reason === 'size' ? 'size cap' : 'free-space floor'}: least recently used (last used ${new Date(r.lastUsed).toISOString()})`);
    }
  }

  // Links and referrer records of what the repositories no longer hold. A blob the repository holds
  // outside any kept manifest (fetched alone) keeps its link for the grace period, as its content does.
  const links: Plan['links'] = [];
  const referrers: Plan['referrers'] = [];
  for (const entry of inv.repositories) {
    const keep = new Set<string>();
    for (const r of byRepo.get(entry) ?? []) if (!evicted.has(r)) for (const d of r.closure) keep.add(d);
    for (const l of entry.links) if (!keep.has(l.digest)) links.push({ entry, kind: 'manifest', digest: l.digest });
    for (const l of entry.blobLinks) {
      if (!keep.has(l.digest) && now - Math.max(l.mtime, input.lastAccess(accessKey.blob(l.digest)) ?? 0) >= input.unreferencedGrace) {
        links.push({ entry, kind: 'blob', digest: l.digest });
      }
    }
    for (const ref of entry.referrers) if (!keep.has(ref.digest)) referrers.push({ entry, subject: ref.subject, digest: ref.digest });
  }

  const plan: Plan = { roots, evict, content, links, referrers, sizeBefore, sizeAfter: sizeBefore - freed };
  if (target !== undefined) plan.target = target;
  return plan;
}
