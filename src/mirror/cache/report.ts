import type { CollectorOptions, PassResult } from './collector.js';
import { rootLabel } from './plan.js';

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** A pass as text: what goes (or would go) and why, one line each, then the totals. */
export function formatPass(r: PassResult, opts: Pick<CollectorOptions, 'maxSize' | 'highWater' | 'lowWater'>, root: string): string {
  const verb = r.dryRun ? 'would remove' : 'removed';
  const lines: string[] = [];
  const { plan } = r;
  lines.push(`${r.dryRun ? 'dry run: nothing is deleted' : 'garbage collection'} in ${root}`);
  const cap = opts.maxSize !== undefined ? `; cap ${formatBytes(opts.maxSize)} (evicts above ${formatBytes(opts.maxSize * opts.highWater)} down to ${formatBytes(opts.maxSize * opts.lowWater)})` : '; no size cap';
  const tags = plan.roots.filter((x) => x.kind === 'tag').length;
  lines.push(`cache: ${formatBytes(plan.sizeBefore)} in ${r.entries.blobs} blobs, ${r.entries.manifests} manifests, ${tags} tags${cap}`);
  const skipped = new Set(r.applied ? plan.evict.filter((e) => !r.applied!.units.some((u) => u.root === e.root)).map((e) => e.root) : []);
  for (const e of plan.evict) {
    if (skipped.has(e.root)) continue;
    lines.push(`${verb} ${e.root.kind === 'tag' ? 'tag' : 'untagged manifest'} ${rootLabel(e.root)}: ${e.detail}; frees ${formatBytes(e.bytes)}`);
  }
  for (const c of plan.content) {
    if (c.reason === 'unreferenced') lines.push(`${verb} unreferenced ${c.entry.kind} ${c.entry.digest} (${formatBytes(c.entry.size)})`);
  }
  for (const t of r.temp) lines.push(`${verb} stale temp file ${t.id} (${t.store}, ${formatBytes(t.size)}, last written ${new Date(t.modifiedAt).toISOString()})`);
  const byKind = { blob: 0, manifest: 0 };
  for (const c of plan.content) byKind[c.entry.kind]++;
  const tempBytes = r.temp.reduce((a, t) => a + t.size, 0);
  lines.push(
    `${r.dryRun ? 'would free' : 'freed'} ${formatBytes(plan.sizeBefore - r.sizeAfter + tempBytes)}: ${plan.evict.length - skipped.size} tags/manifests, ${byKind.blob} blobs, ${byKind.manifest} manifest files, ${r.temp.length} temp files; ` +
      `cache ${r.dryRun ? 'would be' : 'is now'} ${formatBytes(r.sizeAfter)}` +
      (r.applied && r.applied.spared > 0 ? ` (${r.applied.spared} items spared: used during the pass)` : '') +
      ` [${Math.round(r.durationMs)} ms]`,
  );
  return lines.join('\n') + '\n';
}

/** The same as JSON, for scripts. */
export function passToJson(r: PassResult): unknown {
  return {
    dryRun: r.dryRun,
    sizeBefore: r.plan.sizeBefore,
    sizeAfter: r.sizeAfter,
    target: r.plan.target ?? null,
    remove: r.plan.evict.map((e) => ({ kind: e.root.kind, name: rootLabel(e.root), reason: e.reason, detail: e.detail, bytes: e.bytes })),
    content: r.plan.content.map((c) => ({ kind: c.entry.kind, digest: c.entry.digest, size: c.entry.size, reason: c.reason })),
    tempFiles: r.temp.map((t) => ({ id: t.id, store: t.store, size: t.size })),
    spared: r.applied?.spared ?? 0,
    durationMs: Math.round(r.durationMs),
  };
}
