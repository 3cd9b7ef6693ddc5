import type { RequestHandler } from 'express';
import type { Clock } from '../../common/clock.js';
import type { Logger } from '../../common/logger.js';
import type { MirrorAuthConfig } from '../../config/schema.js';
import { Authenticator, type PasswordVerifier } from './authenticator.js';
import { BcryptPool } from './bcrypt-pool.js';
import { FailedLogins } from './failed-logins.js';
import { HtpasswdFile } from './htpasswd-file.js';
import { authMiddleware } from './middleware.js';
import { VerificationCache } from './verification-cache.js';

export interface MirrorAuth {
  authenticator: Authenticator;
  users: HtpasswdFile;
  middleware: RequestHandler;
  close(): Promise<void>;
}

/** Longest wait for a bcrypt thread before 429. */
const QUEUE_TIMEOUT_MS = 10_000;
/** A refused login is answered after this long (see AuthenticatorDeps.refusalDelayMs). */
const REFUSAL_DELAY_MS = 1000;

/**
 * Builds authentication from `mirror.auth`; undefined when no htpasswd file is configured (the mirror is
 * then open, as a plain HTTP registry behind an ingress that authenticates). Throws CONFIG_INVALID for an
 * unreadable or non-bcrypt file. bcrypt runs on a pool of worker threads unless `verify` is given.
 */
export function createMirrorAuth(
  config: MirrorAuthConfig,
  deps: { logger: Logger; clock: Clock; watchIntervalMs: number; verify?: PasswordVerifier | undefined },
): MirrorAuth | undefined {
  if (!config.htpasswd) return undefined;
  const users = new HtpasswdFile(config.htpasswd, { logger: deps.logger });
  const cache = new VerificationCache({ ttlMs: config.cacheTtl, maxEntries: config.cacheSize, clock: deps.clock });
  let pool: BcryptPool | undefined;
  const verify =
    deps.verify ??
    (pool = new BcryptPool({ threads: config.maxConcurrentVerifications, maxQueued: config.verificationQueue, queueTimeoutMs: QUEUE_TIMEOUT_MS, logger: deps.logger })).verify;
  const failures = new FailedLogins(
    { perAddress: config.failedLoginsPerAddress, perUser: config.failedLoginsPerUser, windowMs: config.failedLoginWindow, maxKeys: config.failedLoginKeys },
    { clock: deps.clock, logger: deps.logger },
  );
  const authenticator = new Authenticator({
    users,
    cache,
    failures,
    refusalDelayMs: REFUSAL_DELAY_MS,
    verify,
    logger: deps.logger,
    anonymousRead: config.anonymousRead,
  });
  users.watch(deps.watchIntervalMs);
  return {
    authenticator,
    users,
    middleware: authMiddleware({ authenticator, realm: config.realm, logger: deps.logger }),
    close: async () => {
      users.close();
      await pool?.close();
    },
  };
}
