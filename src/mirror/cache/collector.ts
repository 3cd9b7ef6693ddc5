import type { Clock } from '../../common/clock.js';
import { MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { Storage } from '../store/storage.js';
import type { AccessTracker } from './access-tracker.js';
import { applyPlan, type Applied } from './apply.js';
import type { CacheMetrics } from './cache-metrics.js';
import { scanInventory } from './inventory.js';
import { planPass, rootLabel, type EvictionReason, type Plan } from './plan.js';
import type { RetentionPolicy } from './retention.js';
import { findStaleWrites, removeStaleWrites, type StaleWrite } from './temp-files.js';

/** A pass holds the lifecycle lease this long, renewed at a third of it while it runs. */
const LIFECYCLE_LEASE_MS = 5 * 60_000;

export interface CollectorOptions {
  maxSize?: number | undefined;
  minFreeSpace?: number | undefined;
  highWater: number;
  lowWater: number;
  unreferencedGrace: number;
  staleTempAge: number;
  policies: RetentionPolicy[];
  /** Units never removed: the images kept warm (see `warmKeep`). */
  keep?: ReadonlySet<string> | undefined;
}

export interface CollectorDeps {
  storage: Pick<Storage, 'blobs' | 'manifests' | 'metadata' | 'freeSpace'>;
  /** Names this process among the lease holders. */
  holder: string;
  clock: Clock;
  logger: Logger;
  access: AccessTracker;
  metrics?: CacheMetrics | undefined;
  /** Downloads in progress (the running mirror); offline there are none. */
  inflight?: { isFetching(digest: string): boolean; isWriting(writeId: string): boolean } | undefined;
  /** Told what a pass removed (access-index keys), so in-memory copies can be dropped too. */
  onRemoved?: ((keys: string[]) => void) | undefined;
}

export interface PassResult {
  dryRun: boolean;
  trigger: string;
  plan: Plan;
  temp: StaleWrite[];
  /** What was done; undefined on a dry run. */
  applied?: Applied;
  /** Bytes of content after the pass (on a dry run: what it would be). */
  sizeAfter: number;
  entries: { blobs: number; manifests: number; tags: number };
  durationMs: number;
}

/**
 * One cache pass: scan the storage, decide (retention, size cap, free-space floor, garbage), then delete,
 * sparing whatever was used or fetched while the pass ran. The same code runs inside the mirror and in
 * `mirrorgate gc`. The lifecycle lease in the metadata store lets one process at a time run a pass.
 */
export class Collector {
  constructor(
    private readonly options: CollectorOptions,
    private readonly deps: CollectorDeps,
  ) {}

  async run(opts: { dryRun?: boolean; trigger?: string } = {}): Promise<PassResult> {
    const dryRun = opts.dryRun ?? false;
    const trigger = opts.trigger ?? 'manual';
    const { storage, clock, access } = this.deps;
    const lease = await storage.metadata.acquireLease('lifecycle', this.deps.holder, LIFECYCLE_LEASE_MS);
    if (!lease) throw new MirrorgateError('STORAGE_LOCKED', 'another process is running a cache pass on this storage');
    const renew = setInterval(() => void lease.renew(LIFECYCLE_LEASE_MS), LIFECYCLE_LEASE_MS / 3);
    renew.unref();
    const started = performance.now();
    const watch = access.watch();
    try {
      const inventory = await scanInventory(storage);
      const now = clock.now();
      let freeSpace: { available: number; floor: number } | undefined;
      if (this.options.minFreeSpace !== undefined) {
        const available = await storage.freeSpace();
        if (available !== undefined) freeSpace = { available, floor: this.options.minFreeSpace };
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
        keep: this.options.keep,
      });
      const inflight = this.deps.inflight;
      const temp = await findStaleWrites(storage, { now, maxAgeMs: this.options.staleTempAge, ...(inflight ? { inUse: (id: string) => inflight.isWriting(id) } : {}) });
      const tags = inventory.repositories.reduce((n, r) => n + r.tags.length, 0);
      let result: PassResult;
      if (dryRun) {
        result = {
          dryRun, trigger, plan, temp, sizeAfter: plan.sizeAfter,
          entries: { blobs: inventory.blobs.size, manifests: inventory.manifests.size, tags },
          durationMs: performance.now() - started,
        };
      } else {
        const applied = await applyPlan(storage, inventory, plan, { touched: watch.keys, isFetching: (d) => inflight?.isFetching(d) ?? false });
        const tempBytes = await removeStaleWrites(storage, temp);
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
      clearInterval(renew);
      await lease.release();
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
