import cluster from 'node:cluster';
import { createLogger } from '../../common/logger.js';
import { onShutdown } from '../../common/on-shutdown.js';
import type { Config } from '../../config/schema.js';
import { MirrorMetrics } from '../metrics.js';
import { MirrorServer } from '../server.js';
import { clusterMetricsText } from './cluster-metrics.js';

/**
 * One worker of a mirror with workers: the whole registry on the shared listening socket and the shared
 * storage (`worker: true`), its log lines carrying its worker id, /metrics answering for all workers.
 * It stops (gracefully) on SIGTERM from the primary, and when the primary is gone.
 */
export async function runWorker(config: Config): Promise<void> {
  const id = cluster.worker?.id ?? 0;
  const logger = createLogger({ level: config.log.level, base: { pid: process.pid, worker: id } });
  const metrics = new MirrorMetrics({ defaultMetrics: true });
  const server = new MirrorServer(config, { logger, metrics, worker: true, metricsText: clusterMetricsText(metrics.registry) });
  try {
    await server.start();
  } catch (err) {
    // The IPC channel would keep this process alive: exit, so the primary sees the failure.
    logger.error({ err: (err as Error).message }, 'worker could not start');
    await server.stop().catch(() => undefined);
    process.exit(1);
  }
  onShutdown(logger, () => server.stop());
  process.once('disconnect', () => {
    logger.warn('the primary process is gone: stopping');
    server.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
