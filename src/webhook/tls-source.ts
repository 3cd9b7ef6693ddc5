import { EventEmitter } from 'node:events';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { Logger } from '../common/logger.js';
import { notAfter } from './certs.js';
import type { WebhookMetrics } from './metrics.js';

/** Where the HTTPS server gets its certificate, and how it learns that it changed. */
export interface TlsMaterial {
  cert: string;
  key: string;
}

export interface TlsSource {
  current(): TlsMaterial;
  /** Called with the new material after a rotation; the server swaps its secure context. */
  onChange(listener: (material: TlsMaterial) => void): void;
  close(): void;
}

/** Refuses a pair Node cannot serve, before it replaces a working one. */
export function validateTls(material: TlsMaterial): void {
  createSecureContext({ cert: material.cert, key: material.key });
}

/** Fixed material, or material pushed by a certificate manager with `set`. */
export class MemoryTlsSource implements TlsSource {
  private readonly events = new EventEmitter();
  constructor(private material: TlsMaterial) {
    validateTls(material);
  }
  current(): TlsMaterial {
    return this.material;
  }
  set(material: TlsMaterial): void {
    validateTls(material);
    this.material = material;
    this.events.emit('change', material);
  }
  onChange(listener: (material: TlsMaterial) => void): void {
    this.events.on('change', listener);
  }
  close(): void {
    this.events.removeAllListeners();
  }
}

/**
 * Certificate files (cert-manager mode), reloaded when they change. Polling (fs.watchFile) rather than fs.watch:
 * Kubernetes swaps Secret volume contents through a symlink, which inotify watches on the file miss.
 */
export class FileTlsSource implements TlsSource {
  private readonly memory: MemoryTlsSource;
  private readonly listener = (): void => this.reload();

  constructor(
    private readonly files: { cert: string; key: string },
    private readonly deps: { logger: Logger; metrics: WebhookMetrics; pollMs?: number },
  ) {
    this.memory = new MemoryTlsSource(this.read());
    deps.metrics.certReloads.inc({ result: 'ok' });
    this.record();
    const poll = deps.pollMs ?? 2000;
    for (const file of [files.cert, files.key]) watchFile(file, { interval: poll, persistent: false }, this.listener);
  }

  private read(): TlsMaterial {
    return { cert: readFileSync(this.files.cert, 'utf8'), key: readFileSync(this.files.key, 'utf8') };
  }

  private record(): void {
    const expiry = notAfter(this.memory.current().cert);
    if (expiry !== undefined) this.deps.metrics.certNotAfter.set(expiry / 1000);
  }

  /** Keeps the last good pair when the new files are half-written or do not match. */
  reload(): void {
    try {
      const next = this.read();
      const cur = this.memory.current();
      if (next.cert === cur.cert && next.key === cur.key) return;
      this.memory.set(next);
      this.deps.metrics.certReloads.inc({ result: 'ok' });
      this.record();
      this.deps.logger.info({ cert: this.files.cert }, 'serving certificate reloaded');
    } catch (err) {
      this.deps.metrics.certReloads.inc({ result: 'error' });
      this.deps.logger.warn({ err, cert: this.files.cert }, 'serving certificate files unusable; keeping the previous ones');
    }
  }

  current(): TlsMaterial {
    return this.memory.current();
  }
  onChange(listener: (material: TlsMaterial) => void): void {
    this.memory.onChange(listener);
  }
  close(): void {
    for (const file of [this.files.cert, this.files.key]) unwatchFile(file, this.listener);
    this.memory.close();
  }
}
