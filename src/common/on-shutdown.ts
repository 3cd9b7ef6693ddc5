import type { Logger } from './logger.js';

/**
 * Runs `stop` once on the first SIGTERM or SIGINT (Kubernetes sends SIGTERM, a terminal SIGINT), logs the
 * signal, and exits 0 when it resolves, 1 when it fails.
 */
export function onShutdown(logger: Logger, stop: () => Promise<unknown>): void {
  const shutdown = (signal: string): void => {
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}
