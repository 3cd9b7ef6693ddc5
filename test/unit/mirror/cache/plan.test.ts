import { describe, expect, it } from 'vitest';
import type { Inventory, RepositoryEntry } from '../../../../src/mirror/cache/inventory.js';
import { planPass, rootLabel, type PlanInput } from '../../../../src/mirror/cache/plan.js';
import { compileRetention } from '../../../../src/mirror/cache/retention.js';
import { warmKeep } from '../../../../src/mirror/warm/targets.js';

const NOW = 1_700_000_000_000;
const H = 3_600_000;
const d = (name: string): string => `sha256:${name.padEnd(64, '0')}`;

/** A tiny inventory: manifests with their refs and sizes, blobs with sizes, one repository's tags. */
function inventory(spec: {
  blobs: Record<string, number>;
  manifests: Record<string, { refs: string[]; size?: number }>;
  /** Keys are repository paths on Docker Hub, or `hosted:<path>` for a hosted repository. */
  repos: Record<string, { tags?: Record<string, string>; links?: string[]; referrers?: Record<string, string>; pushedAt?: Record<string, number> }>;
}): Inventory {
  const inv: Inventory = { blobs: new Map(), manifests: new Map(), repositories: [] };
  for (const [n, size] of Object.entries(spec.blobs)) inv.blobs.set(d(n), { kind: 'blob', digest: d(n), size, mtime: NOW - 48 * H });
  for (const [n, m] of Object.entries(spec.manifests)) inv.manifests.set(d(n), { kind: 'manifest', digest: d(n), size: m.size ?? 10, mtime: NOW - 48 * H, refs: m.refs.map(d) });
  for (const [name, r] of Object.entries(spec.repos)) {
    const hosted = name.startsWith('hosted:');
    const entry: RepositoryEntry = {
      repo: hosted ? { upstream: 'hosted', path: name.slice(7) } : { upstream: 'docker.io', path: name },
      tags: Object.entries(r.tags ?? {}).map(([tag, m]) => ({ tag, digest: d(m), mtime: r.pushedAt?.[tag] ?? NOW - 48 * H })),
      links: [...new Set([...Object.values(r.tags ?? {}), ...(r.links ?? [])])].map((m) => ({ digest: d(m), mtime: NOW - 48 * H })),
      blobLinks: [],
      // referrer -> subject
      referrers: Object.entries(r.referrers ?? {}).map(([ref, subject]) => ({ subject: d(subject), digest: d(ref) })),
    };
    inv.repositories.push(entry);
  }
  return inv;
}

function input(inv: Inventory, used: Record<string, number>, extra: Partial<PlanInput> = {}): PlanInput {
  return {
    inventory: inv,
    now: NOW,
    lastAccess: (k) => used[k],
    policies: [],
    highWater: 0.9,
    lowWater: 0.5,
    unreferencedGrace: 10 * 60_000,
    ...extra,
  };
}

const tagKey = (repo: string, tag: string): string => `tag:docker.io/${repo}:${tag}`;

describe('planPass', () => {
  // a and b share the base blob; c is an index over two children.
  const spec = {
    blobs: { base: 400, a1: 300, b1: 300, c1: 200, c2: 200, cfg: 10 },
    manifests: {
      ma: { refs: ['cfg', 'base', 'a1'] },
      mb: { refs: ['cfg', 'base', 'b1'] },
      ci: { refs: ['c1m', 'c2m'] },
      c1m: { refs: ['cfg', 'c1'] },
      c2m: { refs: ['cfg', 'c2'] },
    },
    repos: { 'library/x': { tags: { a: 'ma', b: 'mb', c: 'ci' }, links: ['c1m', 'c2m'] } },
  };

  it('evicts least recently used images whole, keeps blobs another kept image references', () => {
    const inv = inventory(spec);
    const used = { [tagKey('library/x', 'a')]: NOW - 3 * H, [tagKey('library/x', 'b')]: NOW - H, [tagKey('library/x', 'c')]: NOW - 2 * H };
    // total 1610 + 5 manifests * 10 = 1660; cap 1600 (high water 1440) -> down to 800
    const plan = planPass(input(inv, used, { maxSize: 1600 }));
    expect(plan.evict.map((e) => [rootLabel(e.root), e.reason])).toEqual([
      ['docker.io/library/x:a', 'size'],
      ['docker.io/library/x:c', 'size'],
    ]);
    const gone = plan.content.map((c) => c.entry.digest).sort();
    // a's own layer and manifest; the whole index with its children; not base or cfg (b still needs them)
    expect(gone).toEqual([d('a1'), d('c1'), d('c1m'), d('c2'), d('c2m'), d('ci'), d('ma')].sort());
    expect(plan.links.map((l) => l.digest).sort()).toEqual([d('c1m'), d('c2m'), d('ci'), d('ma')].sort());
    expect(plan.sizeAfter).toBeLessThanOrEqual(800);
  });

  it('does nothing below the high-water mark', () => {
    const plan = planPass(input(inventory(spec), {}, { maxSize: 10_000 }));
    expect(plan.evict).toEqual([]);
    expect(plan.content).toEqual([]);
  });

  it('an index child pulled by digest is part of the index, not a unit of its own', () => {
    const plan = planPass(input(inventory(spec), {}));
    expect(plan.roots.map(rootLabel).sort()).toEqual(['docker.io/library/x:a', 'docker.io/library/x:b', 'docker.io/library/x:c']);
  });

  it('collects unreferenced content past its grace period only', () => {
    const inv = inventory({ ...spec, blobs: { ...spec.blobs, lone: 50, fresh: 60 } });
    const plan = planPass(input(inv, { [`blob:${d('fresh')}`]: NOW - 60_000 }));
    expect(plan.content.map((c) => [c.entry.digest, c.reason])).toEqual([[d('lone'), 'unreferenced']]);
  });

  it('evicts for the free-space floor', () => {
    const plan = planPass(input(inventory(spec), { [tagKey('library/x', 'b')]: NOW }, { freeSpace: { available: 900, floor: 1000 } }));
    expect(plan.evict[0]!.reason).toBe('free_space');
    // needs 1100 - 900 = 200 bytes
    expect(plan.sizeBefore - plan.sizeAfter).toBeGreaterThanOrEqual(200);
    expect(plan.evict.map((e) => e.root.tag)).not.toContain('b');
  });

  it('retention: keepTags pins, keepLast counts the others, expireAfter removes idle ones; pinned go last under the cap', () => {
    const inv = inventory({
      blobs: { l1: 100, l2: 100, l3: 100, l4: 100, l5: 100 },
      manifests: { m1: { refs: ['l1'] }, m2: { refs: ['l2'] }, m3: { refs: ['l3'] }, m4: { refs: ['l4'] }, m5: { refs: ['l5'] } },
      repos: { 'team/app': { tags: { 'v1.0.0': 'm1', 'v2.0.0': 'm2', 'dev-a': 'm3', 'dev-b': 'm4' }, links: ['m5'] } },
    });
    const used = {
      [tagKey('team/app', 'v1.0.0')]: NOW - 100 * H,
      [tagKey('team/app', 'v2.0.0')]: NOW - 90 * H,
      [tagKey('team/app', 'dev-a')]: NOW - 2 * H,
      [tagKey('team/app', 'dev-b')]: NOW - 1 * H,
      [`manifest:${d('m5')}`]: NOW - 30 * H,
    };
    const policies = compileRetention([{ upstream: '*', repository: 'team/**', keepLast: 1, keepTags: '^v\\d+\\.\\d+\\.\\d+$', expireAfter: 24 * H }]);
    const plan = planPass(input(inv, used, { policies }));
    expect(plan.evict.map((e) => [rootLabel(e.root), e.detail])).toEqual([
      ['docker.io/team/app:dev-a', 'retention: not among the 1 most recent tags'],
      [`docker.io/team/app@${d('m5')}`, 'retention: unused for more than 1d'],
    ]);
    // Under a cap, the unpinned survivor (dev-b, most recent) goes before the older pinned releases.
    const capped = planPass(input(inv, used, { policies, maxSize: 300, lowWater: 0.4, highWater: 0.5 }));
    expect(capped.evict.filter((e) => e.reason === 'size').map((e) => e.root.tag)).toEqual(['dev-b', 'v1.0.0']);
  });

  it('never removes images kept warm: not for the size cap, not by retention, whether held by tag or by digest', () => {
    const inv = inventory(spec);
    // a is the least recently used: without keep, the cap takes it first (see the first test).
    const used = { [tagKey('library/x', 'a')]: NOW - 3 * H, [tagKey('library/x', 'b')]: NOW - H, [tagKey('library/x', 'c')]: NOW - 2 * H };
    const keep = warmKeep(['x:a']);
    expect([...keep]).toEqual(['docker.io/library/x:a']);
    const plan = planPass(input(inv, used, { maxSize: 1600, keep }));
    expect(plan.evict.map((e) => rootLabel(e.root))).toEqual(['docker.io/library/x:c', 'docker.io/library/x:b']);
    const gone = new Set(plan.content.map((c) => c.entry.digest));
    for (const digest of [d('ma'), d('cfg'), d('base'), d('a1')]) expect(gone.has(digest), digest).toBe(false);
    expect(plan.roots.find((r) => r.tag === 'a')!.kept).toBe(true);

    // Even a cap nothing else can meet leaves it: everything else goes, and the pass stops there.
    const squeezed = planPass(input(inv, used, { maxSize: 100, keep }));
    expect(squeezed.evict.map((e) => e.root.tag).sort()).toEqual(['b', 'c']);
    expect(squeezed.sizeAfter).toBeGreaterThan(squeezed.target!);

    // A digest reference keeps the tag that points at it; retention (keepLast 0) removes only the others.
    const byDigest = new Set([`docker.io/library/x@${d('mb')}`]);
    const retained = planPass(input(inv, used, { keep: byDigest, policies: compileRetention([{ upstream: '*', repository: '**', keepLast: 0 }]) }));
    expect(retained.evict.map((e) => [e.root.tag, e.reason])).toEqual([
      ['a', 'retention'],
      ['c', 'retention'],
    ]);
  });

  it('a policy applies only to the repositories it names', () => {
    const inv = inventory({ blobs: { l1: 1, l2: 1 }, manifests: { m1: { refs: ['l1'] }, m2: { refs: ['l2'] } }, repos: { 'other/app': { tags: { a: 'm1', b: 'm2' } } } });
    const plan = planPass(input(inv, {}, { policies: compileRetention([{ upstream: 'docker.io', repository: 'team/*', keepLast: 0 }]) }));
    expect(plan.evict).toEqual([]);
  });

  describe('hosted repositories', () => {
    const hostedSpec = {
      blobs: { h1: 500, h2: 500, p1: 400, p2: 400 },
      manifests: { hm1: { refs: ['h1'] }, hm2: { refs: ['h2'] }, pm1: { refs: ['p1'] }, pm2: { refs: ['p2'] }, sig: { refs: [] }, old: { refs: [] } },
      repos: {
        'hosted:team/app': { tags: { v1: 'hm1', v2: 'hm2' }, links: ['sig', 'old'], referrers: { sig: 'hm1' } },
        'library/a': { tags: { '1': 'pm1' } },
        'library/b': { tags: { '1': 'pm2' } },
      },
    };

    it('the size cap evicts only cached images, and content only hosted repositories hold does not count toward it', () => {
      const inv = inventory(hostedSpec);
      // Cached: 820 bytes (two images); hosted: over 1000. A cap of 500 evicts both cached images and nothing hosted.
      const plan = planPass(input(inv, { [tagKey('library/a', '1')]: NOW - 2 * H, [tagKey('library/b', '1')]: NOW - H }, { maxSize: 500, highWater: 0.9, lowWater: 0.5 }));
      const evicted = plan.evict.filter((e) => e.reason === 'size').map((e) => rootLabel(e.root));
      expect(evicted).toEqual(['docker.io/library/a:1', 'docker.io/library/b:1']);
      expect(plan.content.map((c) => c.entry.digest)).not.toContain(d('h1'));
      // A cap the cached images fit in, though cached and hosted together do not: nothing goes for size.
      expect(planPass(input(inventory(hostedSpec), {}, { maxSize: 1000 })).evict.filter((e) => e.reason === 'size')).toEqual([]);
    });

    it('untagged hosted manifests go after the grace period, unless they are referrers of a kept manifest', () => {
      const plan = planPass(input(inventory(hostedSpec), {}));
      expect(plan.evict.map((e) => [rootLabel(e.root), e.reason])).toEqual([[`hosted/team/app@${d('old')}`, 'unreferenced']]);
      // Within the grace period (a push by digest just before its tag): kept.
      expect(planPass(input(inventory(hostedSpec), {}, { unreferencedGrace: 100 * H })).evict).toEqual([]);
    });

    it('retention by push time: keepLast, expireTags with expireAfter, semverOnly; keepTags protects', () => {
      const inv = inventory({
        blobs: {},
        manifests: { a: { refs: [] }, b: { refs: [] }, c: { refs: [] }, e: { refs: [] }, f: { refs: [] } },
        repos: {
          'hosted:ci/app': {
            tags: { 'pr-12': 'a', 'pr-13': 'b', '1.0.0': 'c', latest: 'e', 'v2.0.0-rc.1': 'f' },
            pushedAt: { 'pr-12': NOW - 10 * 24 * H, 'pr-13': NOW - H, '1.0.0': NOW - 30 * 24 * H, latest: NOW - 40 * 24 * H, 'v2.0.0-rc.1': NOW - 2 * H },
          },
        },
      });
      const prs = compileRetention([{ upstream: 'hosted', repository: 'ci/**', expireAfter: 7 * 24 * H, expireTags: '^pr-' }]);
      expect(planPass(input(inv, {}, { policies: prs })).evict.map((e) => e.root.tag)).toEqual(['pr-12']);
      const semver = compileRetention([{ upstream: 'hosted', repository: 'ci/**', semverOnly: true, keepTags: '^latest$' }]);
      expect(planPass(input(inv, {}, { policies: semver })).evict.map((e) => e.root.tag).sort()).toEqual(['pr-12', 'pr-13']);
      const last = compileRetention([{ upstream: 'hosted', repository: 'ci/**', keepLast: 2 }]);
      // By push time, not by pulls: pr-13 and v2.0.0-rc.1 are the two most recent pushes.
      expect(planPass(input(inv, {}, { policies: last })).evict.map((e) => e.root.tag).sort()).toEqual(['1.0.0', 'latest', 'pr-12']);
    });
  });
});
