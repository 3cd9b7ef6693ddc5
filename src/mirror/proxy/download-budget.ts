import { ByteWindow } from './byte-window.js';

/** Stored bytes the windows of all downloads of a process keep together. */
export const WINDOWS_TOTAL_BYTES = 32 * 1024 * 1024;
/** Never less per download: a client keeping up with the download still reads from memory. */
export const WINDOW_LEAST_BYTES = 1024 * 1024;
/** Writes (of one batch, about 1 MiB, each) all downloads of a process have in flight together, at most. */
export const WRITES_TOTAL = 32;

/**
 * Shares memory out between the downloads running in a process: each window gets up to `most` bytes and
 * each download up to `mostWrites` writes in flight, less when many run at once (never below one
 * write and `least` bytes), so 32 cold downloads hold what 8 would. Why: the memory a process reaches while
 * many downloads run stays with it afterwards (the heap it grew is not given back), so the number of
 * downloads at once, not their size, sets a mirror's resident memory.
 */
export class DownloadBudget {
  private readonly windows = new Set<ByteWindow>();

  constructor(
    private readonly most: number,
    private readonly mostWrites: number,
    private readonly total = WINDOWS_TOTAL_BYTES,
    private readonly least = WINDOW_LEAST_BYTES,
    private readonly totalWrites = WRITES_TOTAL,
  ) {}

  /** Bytes each window may keep now. */
  get share(): number {
    return Math.max(this.least, Math.min(this.most, Math.floor(this.total / this.running)));
  }

  /** Writes each download may have in flight now. */
  get writes(): number {
    return Math.max(1, Math.min(this.mostWrites, Math.floor(this.totalWrites / this.running)));
  }

  /** A window for a new download, starting at `start`; every window's capacity follows the count. */
  open(start: number): ByteWindow {
    const window = new ByteWindow(this.most, start);
    this.windows.add(window);
    this.resize();
    return window;
  }

  /** The download ended: its share goes back to the others. */
  close(window: ByteWindow): void {
    if (this.windows.delete(window)) this.resize();
  }

  private get running(): number {
    return Math.max(1, this.windows.size);
  }

  private resize(): void {
    const share = this.share;
    for (const w of this.windows) w.resize(share);
  }
}
