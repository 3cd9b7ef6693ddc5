import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { watchFiles } from '../files/watch-files.js';
import { commonCost, dummyHash } from './dummy-hash.js';
import { HtpasswdError, parseHtpasswd, type HtpasswdUsers } from './htpasswd.js';

/** Where the authenticator looks users up. */
export interface UserSource {
  /** The user's bcrypt hash, or undefined for an unknown user. */
  hashOf(user: string): string | undefined;
  /**
   * A hash no password matches, of the cost most users' hashes have: unknown users are checked against it,
   * so that they take as long as known ones (no probing user names by timing).
   */
  dummyHash(): string;
  /** Called after the users changed (a reload took effect). */
  onChange(listener: () => void): void;
}

const MAX_FILE_BYTES = 4 * 1024 * 1024;

function readUsers(file: string): { text: string; users: HtpasswdUsers } {
  const buf = readFileSync(file);
  if (buf.length > MAX_FILE_BYTES) throw new HtpasswdError([`larger than ${MAX_FILE_BYTES} bytes`], file);
  const text = buf.toString('utf8');
  return { text, users: parseHtpasswd(text, file) };
}

/**
 * An htpasswd file, loaded at start (a broken file is a configuration error) and reloaded when it changes.
 * A reload that fails (half-written file, a non-bcrypt line) keeps the last good users and logs why.
 */
export class HtpasswdFile implements UserSource {
  private users: HtpasswdUsers;
  private text: string;
  private dummy: string;
  private readonly events = new EventEmitter();
  private stopWatching: (() => void) | undefined;

  constructor(
    readonly file: string,
    private readonly deps: { logger: Logger },
  ) {
    try {
      ({ text: this.text, users: this.users } = readUsers(file));
    } catch (err) {
      const why = err instanceof HtpasswdError ? err.message : `${file}: cannot read: ${(err as Error).message}`;
      throw new MirrorgateError('CONFIG_INVALID', `mirror.auth.htpasswd: ${why}`, { cause: err });
    }
    this.dummy = dummyHash(commonCost(this.users.values()));
    deps.logger.info({ htpasswd: file, users: this.users.size }, 'htpasswd loaded');
  }

  get size(): number {
    return this.users.size;
  }

  hashOf(user: string): string | undefined {
    return this.users.get(user);
  }

  dummyHash(): string {
    return this.dummy;
  }

  onChange(listener: () => void): void {
    this.events.on('change', listener);
  }

  /** Re-reads the file. Returns true when the users changed. Never throws. */
  reload(): boolean {
    let next: { text: string; users: HtpasswdUsers };
    try {
      next = readUsers(this.file);
    } catch (err) {
      const why = err instanceof HtpasswdError ? err.message : `cannot read: ${(err as Error).message}`;
      this.deps.logger.warn({ htpasswd: this.file, reason: why }, 'htpasswd reload failed; keeping the previous users');
      return false;
    }
    if (next.text === this.text) return false;
    this.text = next.text;
    this.users = next.users;
    this.dummy = dummyHash(commonCost(this.users.values()));
    this.deps.logger.info({ htpasswd: this.file, users: this.users.size }, 'htpasswd reloaded');
    this.events.emit('change');
    return true;
  }

  watch(intervalMs: number): void {
    this.stopWatching ??= watchFiles([this.file], () => this.reload(), { intervalMs, logger: this.deps.logger });
  }

  close(): void {
    this.stopWatching?.();
    this.stopWatching = undefined;
    this.events.removeAllListeners();
  }
}
