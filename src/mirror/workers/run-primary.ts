import { Registry } from 'prom-client';
import { systemClock } from '../../common/clock.js';
import type { Logger } from '../../common/logger.js';
import type { Config } from '../../config/schema.js';
import { createStorage } from '../store/create-storage.js';
import { serveClusterMetrics } from './cluster-metrics.js';
import { WorkerPool } from './worker-pool.js';

/** The primary refreshes its claim on the storage this often (as a single-process mirror does). */
const CLAIM_HEARTBEAT_MS = 30_000;

/**
 * The primary process of a mirror with workers. It serves no HTTP: it does what must happen once per
 * storage before the workers share it (checks it, sweeps the temp files a crash left, holds the storage
 * claim that keeps `mirrorgate gc` off while the mirror runs), answers the workers' requests for the summed
 * metrics, and keeps `count` workers running. Resolves with the URL and a stop function once a worker listens.
 */
export async function runPrimary(config: Config, count: number, logger: Logger): Promise<{ url: string; description: string; stop: () => Promise<void> }> {
  const storage = createStorage(config.mirror, { clock: systemClock, logger, registry: new Registry(), env: process.env });
  const { swept } = await storage.prepare();
  if (swept > 0) logger.warn({ swept }, 'removed temp files left by an earlier run');
  const claim = await storage.claim('mirror');
  const heartbeat = setInterval(() => void claim.heartbeat(), CLAIM_HEARTBEAT_MS);
  heartbeat.unref();
  serveClusterMetrics();
  const pool = new WorkerPool({ count, listen: config.mirror.listen, tls: Boolean(config.mirror.tls), shutdownGraceMs: config.mirror.shutdownGrace, logger });
  const release = async (): Promise<void> => {
    clearInterval(heartbeat);
    await claim.release();
    await storage.close?.();
  };
  let url: string;
  try {
    url = await pool.start();
  } catch (err) {
    await pool.stop();
    await release();
    throw err;
  }
  logger.info({ workers: count, url }, `mirror listening on ${url} with ${count} workers`);
  return {
    url,
    description: storage.description,
    stop: async () => {
      await pool.stop();
      await release();
    },
  };
}
