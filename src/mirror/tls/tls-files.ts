import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { watchFiles } from '../files/watch-files.js';
import type { MirrorMetrics } from '../metrics.js';

/** TLS 1.2 and 1.3 only; Node's default cipher list (forward secrecy, AEAD first). */
export const TLS_DEFAULTS = { minVersion: 'TLSv1.2' } as const satisfies SecureContextOptions;

export interface TlsPair {
  cert: string;
  key: string;
}

/**
 * The mirror's serving certificate and key, read from files and re-read when they change. A new pair is
 * used only if Node accepts it (the key matches the certificate, both parse): a half-written or mismatched
 * pair keeps the last good one and logs why. The certificate in use has its expiry in
 * `mirrorgate_mirror_cert_not_after_seconds`.
 */
export class TlsFiles {
  private pair: TlsPair;
  private readonly listeners: Array<(pair: TlsPair) => void> = [];
  private stopWatching: (() => void) | undefined;

  constructor(
    private readonly files: { cert: string; key: string },
    private readonly deps: { logger: Logger; metrics?: Pick<MirrorMetrics, 'certNotAfter'> },
  ) {
    try {
      this.pair = this.read();
    } catch (err) {
      throw new MirrorgateError('CONFIG_INVALID', `mirror.tls: ${(err as Error).message}`, { cause: err });
    }
    this.exportExpiry();
  }

  private exportExpiry(): void {
    this.deps.metrics?.certNotAfter.set(Date.parse(new X509Certificate(this.pair.cert).validTo) / 1000);
  }

  get current(): TlsPair {
    return this.pair;
  }

  onChange(listener: (pair: TlsPair) => void): void {
    this.listeners.push(listener);
  }

  private read(): TlsPair {
    const pair = { cert: readFileSync(this.files.cert, 'utf8'), key: readFileSync(this.files.key, 'utf8') };
    // createSecureContext alone accepts a certificate whose key is missing (OpenSSL drops the mismatched key):
    // check the pair explicitly, or a rotation caught between its two writes would break every handshake.
    if (!new X509Certificate(pair.cert).checkPrivateKey(createPrivateKey(pair.key))) throw new Error('the key does not belong to the certificate');
    createSecureContext({ ...TLS_DEFAULTS, ...pair });
    return pair;
  }

  /** Re-reads the files; returns true when a new pair took effect. Never throws. */
  reload(): boolean {
    let next: TlsPair;
    try {
      next = this.read();
    } catch (err) {
      this.deps.logger.warn({ cert: this.files.cert, reason: (err as Error).message }, 'certificate reload failed; keeping the previous certificate');
      return false;
    }
    if (next.cert === this.pair.cert && next.key === this.pair.key) return false;
    this.pair = next;
    this.exportExpiry();
    for (const l of this.listeners) l(next);
    this.deps.logger.info({ cert: this.files.cert }, 'serving certificate reloaded');
    return true;
  }

  watch(intervalMs: number): void {
    this.stopWatching ??= watchFiles([this.files.cert, this.files.key], () => this.reload(), { intervalMs, logger: this.deps.logger });
  }

  close(): void {
    this.stopWatching?.();
    this.stopWatching = undefined;
    this.listeners.length = 0;
  }
}
