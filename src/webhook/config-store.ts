import { unwatchFile, watchFile } from 'node:fs';
import type { Logger } from '../common/logger.js';
import type { Config } from '../config/schema.js';
import { loadConfig, type LoadOptions } from '../config/load.js';
import type { WebhookMetrics } from './metrics.js';

/**
 * The configuration in force, reloaded when its file changes. An invalid new file is reported and ignored: the
 * last good configuration stays. Fields read at start-up only (listen address, TLS files) need a restart.
 */
export class ConfigStore {
  private config: Config;
  private readonly listeners: Array<(config: Config) => void> = [];
  private readonly listener = (): void => void this.reload();

  constructor(
    private readonly load: LoadOptions,
    private readonly deps: { logger: Logger; metrics: WebhookMetrics; pollMs?: number },
    initial?: Config,
  ) {
    this.config = initial ?? loadConfig(load);
  }

  current(): Config {
    return this.config;
  }

  onChange(listener: (config: Config) => void): void {
    this.listeners.push(listener);
  }

  /** Starts polling the file (no-op without one). */
  watch(): void {
    if (this.load.file) watchFile(this.load.file, { interval: this.deps.pollMs ?? 2000, persistent: false }, this.listener);
  }

  reload(): boolean {
    try {
      const next = loadConfig(this.load);
      this.config = next;
      this.deps.metrics.configReloads.inc({ result: 'ok' });
      this.deps.logger.info({ file: this.load.file }, 'configuration reloaded');
      for (const l of this.listeners) l(next);
      return true;
    } catch (err) {
      this.deps.metrics.configReloads.inc({ result: 'error' });
      this.deps.logger.error({ err: { message: (err as Error).message } }, 'new configuration is invalid; keeping the last good one');
      return false;
    }
  }

  close(): void {
    if (this.load.file) unwatchFile(this.load.file, this.listener);
    this.listeners.length = 0;
  }
}
