import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Cache lifecycle metrics, registered on the mirror's registry (or a registry of their own offline). */
export class CacheMetrics {
  readonly sizeBytes: Gauge;
  readonly maxSizeBytes: Gauge;
  readonly entries: Gauge<'kind'>;
  readonly evictions: Counter<'reason'>;
  readonly freedBytes: Counter<'reason'>;
  readonly passDuration: Histogram;
  readonly lastPass: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.sizeBytes = new Gauge({
      name: 'mirrorgate_cache_size_bytes',
      help: 'Bytes of blobs and manifests in the cache (measured at each pass, plus what was stored since)',
      registers,
    });
    this.maxSizeBytes = new Gauge({
      name: 'mirrorgate_cache_max_size_bytes',
      help: 'The size cap, mirror.storage.maxSize (0 when none is set)',
      registers,
    });
    this.entries = new Gauge({
      name: 'mirrorgate_cache_entries',
      help: 'Entries in the cache at the last pass, by kind (blob, manifest, tag)',
      labelNames: ['kind'],
      registers,
    });
    this.evictions = new Counter({
      name: 'mirrorgate_cache_evictions_total',
      help: 'Tags and untagged manifests removed, and content files collected, by reason (size, free_space, retention, unreferenced, temp)',
      labelNames: ['reason'],
      registers,
    });
    this.freedBytes = new Counter({
      name: 'mirrorgate_cache_freed_bytes_total',
      help: 'Bytes deleted from the cache, by reason (size, free_space, retention, unreferenced, temp)',
      labelNames: ['reason'],
      registers,
    });
    this.passDuration = new Histogram({
      name: 'mirrorgate_cache_pass_duration_seconds',
      help: 'Duration of a cache pass (scan, plan, delete)',
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
      registers,
    });
    this.lastPass = new Gauge({
      name: 'mirrorgate_cache_last_pass_timestamp_seconds',
      help: 'When the last cache pass finished',
      registers,
    });
  }
}
