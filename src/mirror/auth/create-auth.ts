import bcrypt from 'bcryptjs';
import type { RequestHandler } from 'express';
import type { Clock } from '../../common/clock.js';
import type { Logger } from '../../common/logger.js';
import type { MirrorAuthConfig } from '../../config/schema.js';
import { Semaphore } from '../limits/semaphore.js';
import { Authenticator, type PasswordVerifier } from './authenticator.js';
import { HtpasswdFile } from './htpasswd-file.js';
import { authMiddleware } from './middleware.js';
import { VerificationCache } from './verification-cache.js';

export interface MirrorAuth {
  authenticator: Authenticator;
  users: HtpasswdFile;
  middleware: RequestHandler;
  close(): void;
}

export const bcryptVerifier: PasswordVerifier = (password, hash) => bcrypt.compare(password, hash);

/**
 * Builds authentication from `mirror.auth`; undefined when no htpasswd file is configured (the mirror is
 * then open, as a plain HTTP registry behind an ingress that authenticates). Throws CONFIG_INVALID for an
 * unreadable or non-bcrypt file.
 */
export function createMirrorAuth(
  config: MirrorAuthConfig,
  deps: { logger: Logger; clock: Clock; watchIntervalMs: number; verify?: PasswordVerifier | undefined },
): MirrorAuth | undefined {
  if (!config.htpasswd) return undefined;
  const users = new HtpasswdFile(config.htpasswd, { logger: deps.logger });
  const cache = new VerificationCache({ ttlMs: config.cacheTtl, maxEntries: config.cacheSize, clock: deps.clock });
  const limiter = new Semaphore({
    max: config.maxConcurrentVerifications,
    maxQueued: config.maxConcurrentVerifications * 16,
    queueTimeoutMs: 10_000,
    what: 'too many password checks in progress',
  });
  const authenticator = new Authenticator({
    users,
    cache,
    limiter,
    verify: deps.verify ?? bcryptVerifier,
    logger: deps.logger,
    anonymousRead: config.anonymousRead,
  });
  users.watch(deps.watchIntervalMs);
  return {
    authenticator,
    users,
    middleware: authMiddleware({ authenticator, realm: config.realm, logger: deps.logger }),
    close: () => users.close(),
  };
}
