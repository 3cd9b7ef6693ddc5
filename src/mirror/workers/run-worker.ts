import cluster from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../common/logger.js';
import { onShutdown } from '../../common/on-shutdown.js';
import type { Config } from '../../config/schema.js';
import { MirrorMetrics } from '../metrics.js';
import { MirrorServer } from '../server.js';
import { clusterMetricsText } from './cluster-metrics.js';
import { HandedConnections, type PrimaryChannel } from './handed-connections.js';
import { PRIMARY_ADDRESS_ENV } from './handoff-messages.js';

/**
 * One worker of a mirror with workers: the whole registry, on the connections its primary hands over and the
 * shared storage (`worker: true`), its log lines carrying its worker id, /metrics answering for all workers.
 * It stops (gracefully) on SIGTERM from the primary, and when the primary is gone.
 */
export async function runWorker(config: Config): Promise<void> {
  const id = cluster.worker?.id ?? 0;
  const logger = createLogger({ level: config.log.level, base: { pid: process.pid, worker: id } });
  const metrics = new MirrorMetrics({ defaultMetrics: true });
  const address = JSON.parse(process.env[PRIMARY_ADDRESS_ENV] ?? 'null') as AddressInfo | null;
  if (!address) throw new Error(`a mirror worker needs ${PRIMARY_ADDRESS_ENV} from its primary`);
  const channel: PrimaryChannel = {
    on: (event, listener) => process.on(event, listener),
    send: (message) => {
      if (process.connected) process.send!(message);
    },
  };
  const connections = new HandedConnections(address, channel);
  const server = new MirrorServer(config, { logger, metrics, worker: true, metricsText: clusterMetricsText(metrics.registry), connections });
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
