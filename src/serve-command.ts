import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { systemClock } from './common/clock.js';
import { createLogger } from './common/logger.js';
import { loadConfig } from './config/load.js';
import { parseListen } from './config/listen.js';
import { runCerts } from './webhook/command.js';
import { ConfigStore } from './webhook/config-store.js';
import { WebhookMetrics } from './webhook/metrics.js';
import { FileTlsSource } from './webhook/tls-source.js';
import { onShutdown } from './common/on-shutdown.js';

/**
 * `mirrorgate serve`: the mirror and the webhook in one process, on embedded defaults, for trying the product
 * on one machine. The webhook's certificate comes from `--certs` (generated there on first run); its mirror
 * probe is the mirror running beside it. In a cluster, run `mirror` and `webhook` as their own Deployments.
 */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the mirror and the webhook together (local use; self-generated certificates)')
    .option('-c, --config <file>', 'YAML configuration file (env MIRRORGATE_CONFIG)')
    .option('--certs <dir>', 'where the webhook certificate is read from, generated on first run', 'certs')
    .action(async (opts: { config?: string; certs: string }) => {
      const load = { file: opts.config ?? process.env.MIRRORGATE_CONFIG, env: process.env };
      let config;
      try {
        config = loadConfig(load);
      } catch (err) {
        process.stderr.write(`${(err as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      // Loaded here, not at the top: the Kubernetes client and the server are large and other commands do not need them.
      const { ownNamespace } = await import('./webhook/kube.js');
      const { startWebhook } = await import('./webhook/runtime.js');
      const { MirrorServer } = await import('./mirror/server.js');
      const logger = createLogger({ level: config.log.level });
      const mirror = new MirrorServer(config, { logger });
      const mirrorAddress = await mirror.start();

      const cert = path.join(opts.certs, 'tls.crt');
      const key = path.join(opts.certs, 'tls.key');
      if (!existsSync(cert) || !existsSync(key)) {
        runCerts({ out: opts.certs, service: config.webhook.serviceName, namespace: ownNamespace(config.webhook.namespace), days: 365 }, { stdout: () => undefined, stderr: (t) => process.stderr.write(t) });
        logger.info({ dir: path.resolve(opts.certs) }, 'generated a CA and serving certificate for the webhook');
      }
      const metrics = new WebhookMetrics({ defaultMetrics: false });
      const configStore = new ConfigStore(load, { logger, metrics }, config);
      const tls = new FileTlsSource({ cert, key }, { logger, metrics });
      const listen = parseListen(config.webhook.listen);
      const webhook = await startWebhook({
        configStore,
        logger,
        clock: systemClock,
        metrics,
        tls,
        ...(listen ? { listen } : {}),
        // The mirror runs in this process: it is reachable while it is ready.
        health: { reachable: () => true },
      });
      process.stderr.write(
        `mirrorgate serve: mirror on ${mirrorAddress.url} (storage ${mirror.storage.description}), webhook on https://127.0.0.1:${webhook.port}/mutate (CA ${path.resolve(opts.certs, 'ca.crt')}); rewriting to ${config.webhook.mirrorHost}\n`,
      );
      onShutdown(logger, () => {
        configStore.close();
        return Promise.all([mirror.stop(), webhook.close().then(() => tls.close())]);
      });
    });
}
