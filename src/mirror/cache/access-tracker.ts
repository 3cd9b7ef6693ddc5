import type { Clock } from '../../common/clock.js';
import type { Logger } from '../../common/logger.js';
import type { MetadataStore } from '../store/metadata-store.js';
import type { RepositoryRef } from '../store/types.js';
import { accessKey } from './access-keys.js';

/** What the stores tell the cache: reads (for LRU) and new content (for the size estimate). */
export interface AccessRecorder {
  blobRead(digest: string): void;
  manifestRead(digest: string): void;
  tagRead(repo: RepositoryRef, tag: string): void;
  /** New content reached the cache (a committed blob, a new manifest). */
  stored(kind: 'blob' | 'manifest', digest: string, size: number): void;
}

/** Keys touched while it is open; the collector uses it to spare whatever was used during a pass. */
export interface AccessWatch {
  readonly keys: ReadonlySet<string>;
  end(): void;
}

/**
 * Last access times of blobs, manifests and tags. A read costs one map write; the map is saved to the
 * metadata store every `flushIntervalMs` (when something changed) and at stop. Keys it has never seen fall
 * back to when the content was stored (see the collector).
 */
export class AccessTracker implements AccessRecorder {
  private readonly times = new Map<string, number>();
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private readonly watches = new Set<Set<string>>();
  private readonly storedListeners = new Set<(kind: 'blob' | 'manifest', size: number) => void>();
  /** Keys dropped since the last save, to drop from the saved times too. */
  private forgotten = new Set<string>();

  constructor(
    private readonly metadata: Pick<MetadataStore, 'loadAccessTimes' | 'saveAccessTimes'>,
    private readonly deps: { clock: Clock; logger: Logger },
  ) {}

  /** Reads the times saved by an earlier run (none saved: start empty). */
  async load(): Promise<void> {
    this.times.clear();
    for (const [k, v] of await this.metadata.loadAccessTimes()) this.times.set(k, v);
  }

  startFlushing(intervalMs: number): void {
    if (intervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => void this.flush().catch((err: unknown) => this.deps.logger.warn({ err: (err as Error).message }, 'could not write the access index')), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  blobRead(digest: string): void {
    this.touch(accessKey.blob(digest));
  }

  manifestRead(digest: string): void {
    this.touch(accessKey.manifest(digest));
  }

  tagRead(repo: RepositoryRef, tag: string): void {
    this.touch(accessKey.tag(repo, tag));
  }

  stored(kind: 'blob' | 'manifest', digest: string, size: number): void {
    this.touch(kind === 'blob' ? accessKey.blob(digest) : accessKey.manifest(digest));
    for (const l of this.storedListeners) l(kind, size);
  }

  onStored(listener: (kind: 'blob' | 'manifest', size: number) => void): void {
    this.storedListeners.add(listener);
  }

  /** Last access in epoch ms, or undefined when this process and the index never saw it. */
  lastAccess(key: string): number | undefined {
    return this.times.get(key);
  }

  /** Drops evicted keys so the index does not grow with content that is gone. */
  forget(keys: Iterable<string>): void {
    for (const k of keys) {
      if (this.times.delete(k)) this.dirty = true;
      this.forgotten.add(k);
    }
  }

  watch(): AccessWatch {
    const keys = new Set<string>();
    this.watches.add(keys);
    return { keys, end: () => this.watches.delete(keys) };
  }

  get size(): number {
    return this.times.size;
  }

  /** Writes the index if anything changed since the last write. One write at a time. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (!this.dirty) return;
    this.dirty = false;
    const forgotten = this.forgotten;
    this.forgotten = new Set();
    this.flushing = this.metadata.saveAccessTimes(new Map(this.times), forgotten);
    try {
      await this.flushing;
    } catch (err) {
      this.dirty = true;
      for (const k of forgotten) this.forgotten.add(k);
      throw err;
    } finally {
      this.flushing = undefined;
    }
  }

  private touch(key: string): void {
    this.times.set(key, this.deps.clock.now());
    this.dirty = true;
    for (const w of this.watches) w.add(key);
  }
}
