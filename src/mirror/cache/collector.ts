import { statfs } from 'node:fs/promises';
import type { Clock } from '../../common/clock.js';
import type { Logger } from '../../common/logger.js';
import type { StorageLayout } from '../store/layout.js';
import type { AccessTracker } from './access-tracker.js';
import { applyPlan, type Applied } from './apply.js';
import type { CacheMetrics } from './cache-metrics.js';
import { scanInventory } from './inventory.js';
import { planPass, rootLabel, type EvictionReason, type Plan } from './plan.js';
import type { RetentionPolicy } from './retention.js';
import { findStaleTempFiles, removeTempFiles, type StaleTempFile } from './temp-files.js';

export interface CollectorOptions {
  maxSize?: number | undefined;
  minFreeSpace?: number | undefined;
  highWater: number;
  lowWater: number;
  unreferencedGrace: number;
  staleTempAge: number;
  policies: RetentionPolicy[];
}

export interface CollectorDeps {
  layout: StorageLayout;
  clock: Clock;
  logger: Logger;
  access: AccessTracker;
  metrics?: CacheMetrics | undefined;
  /** Downloads in progress (the running mirror); offline there are none. */
  inflight?: { isFetching(digest: string): boolean; isWritingTemp(file: string): boolean } | undefined;
  /** Told what a pass removed (access-index keys), so in-memory copies can be dropped too. */
  onRemoved?: ((keys: string[]) => void) | undefined;
}

export interface PassResult {
  dryRun: boolean;
  trigger: string;
  plan: Plan;
  temp: StaleTempFile[];
  /** What was done; undefined on a dry run. */
  applied?: Applied;
  /** Bytes of content after the pass (on a dry run: what it would be). */
  sizeAfter: number;
  entries: { blobs: number; manifests: number; tags: number };
  durationMs: number;
}

/**
 * One cache pass: scan the storage directory, decide (retention, size cap, free-space floor, garbage),
 * then delete, sparing whatever was used or fetched while the pass ran. The same code runs inside the
 * mirror and in `mirrorgate gc`.
 */
export class Collector {
  constructor(
    private readonly options: CollectorOptions,
    private readonly deps: CollectorDeps,
  ) {}

  async run(opts: { dryRun?: boolean; trigger?: string } = {}): Promise<PassResult> {
    const dryRun = opts.dryRun ?? false;
    const trigger = opts.trigger ?? 'manual';
    const { layout, clock, access } = this.deps;
    const started = performance.now();
    const watch = access.watch();
    try {
      const inventory = await scanInventory(layout);
      const now = clock.now();
      let freeSpace: { available: number; floor: number } | undefined;
      if (this.options.minFreeSpace !== undefined) {
        const fs = await statfs(layout.root);
        freeSpace = { available: fs.bavail * fs.bsize, floor: this.options.minFreeSpace };
      }
      const plan = planPass({
        inventory,
        now,
        lastAccess: (k) => access.lastAccess(k),
        policies: this.options.policies,
        maxSize: this.options.maxSize,
        highWater: this.options.highWater,
        lowWater: this.options.lowWater,
        freeSpace,
        unreferencedGrace: this.options.unreferencedGrace,
      });
      const inflight = this.deps.inflight;
      const temp = await findStaleTempFiles(layout.tmpDir, { now, maxAgeMs: this.options.staleTempAge, ...(inflight ? { inUse: (f: string) => inflight.isWritingTemp(f) } : {}) });
      const tags = inventory.repositories.reduce((n, r) => n + r.tags.length, 0);
      let result: PassResult;
      if (dryRun) {
        result = {
          dryRun, trigger, plan, temp, sizeAfter: plan.sizeAfter,
          entries: { blobs: inventory.blobs.size, manifests: inventory.manifests.size, tags },
          durationMs: performance.now() - started,
        };
      } else {
        const applied = await applyPlan(layout, inventory, plan, { touched: watch.keys, isFetching: (d) => inflight?.isFetching(d) ?? false });
        const tempBytes = await removeTempFiles(temp);
        access.forget(applied.forgotten);
        this.deps.onRemoved?.(applied.forgotten);
        const freed = Object.values(applied.bytes).reduce((a, b) => a + b, 0);
        result = {
          dryRun, trigger, plan, temp, applied,
          sizeAfter: plan.sizeBefore - freed,
          entries: {
            blobs: inventory.blobs.size - applied.deleted.blob,
            manifests: inventory.manifests.size - applied.deleted.manifest,
            tags: tags - applied.units.filter((u) => u.root.tag !== undefined).length,
          },
          durationMs: performance.now() - started,
        };
        this.record(result, tempBytes);
      }
      return result;
    } finally {
      watch.end();
    }
  }

  private record(r: PassResult, tempBytes: number): void {
    const m = this.deps.metrics;
    const a = r.applied!;
    if (m) {
      m.sizeBytes.set(r.sizeAfter);
      m.entries.set({ kind: 'blob' }, r.entries.blobs);
      m.entries.set({ kind: 'manifest' }, r.entries.manifests);
      m.entries.set({ kind: 'tag' }, r.entries.tags);
      const units = countBy(a.units.map((u) => u.reason));
      for (const reason of Object.keys(a.bytes) as EvictionReason[]) {
        const n = (units[reason] ?? 0) + (reason === 'unreferenced' ? a.files.unreferenced : 0);
        if (n > 0) m.evictions.inc({ reason }, n);
        if (a.bytes[reason] > 0) m.freedBytes.inc({ reason }, a.bytes[reason]);
      }
      if (r.temp.length > 0) {
        m.evictions.inc({ reason: 'temp' }, r.temp.length);
        m.freedBytes.inc({ reason: 'temp' }, tempBytes);
      }
      m.passDuration.observe(r.durationMs / 1000);
      m.lastPass.set(Math.floor(this.deps.clock.now() / 1000));
    }
    const freed = Object.values(a.bytes).reduce((x, y) => x + y, 0);
    const changed = a.units.length > 0 || freed > 0 || r.temp.length > 0;
    this.deps.logger[changed ? 'info' : 'debug'](
      {
        trigger: r.trigger,
        durationMs: Math.round(r.durationMs),
        sizeBefore: r.plan.sizeBefore,
        sizeAfter: r.sizeAfter,
        ...(r.plan.target !== undefined ? { target: r.plan.target } : {}),
        freedBytes: freed,
        freedByReason: a.bytes,
        evicted: a.units.slice(0, 50).map((u) => `${rootLabel(u.root)} (${u.reason})`),
        evictedCount: a.units.length,
        filesDeleted: a.files,
        tempFiles: r.temp.length,
        spared: a.spared,
      },
      changed ? `cache pass freed ${freed + tempBytes} bytes, removed ${a.units.length} tags/manifests` : 'cache pass: nothing to remove',
    );
  }
}

function countBy<T extends string>(xs: T[]): Partial<Record<T, number>> {
  const out: Partial<Record<T, number>> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}
