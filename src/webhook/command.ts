import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { systemClock } from '../common/clock.js';
import { createLogger } from '../common/logger.js';
import { loadConfig, type RawConfig } from '../config/load.js';
import { parseListen } from '../config/listen.js';
import { rewriteImage } from '../reference/rewrite.js';
import { generateBundle, LOCAL_IPS, serviceDnsNames } from './certs.js';
import { ConfigStore } from './config-store.js';
import { WebhookMetrics } from './metrics.js';
import { rulesFromConfig } from './rules.js';
import { FileTlsSource, MemoryTlsSource, type TlsSource } from './tls-source.js';
import { onShutdown } from '../common/on-shutdown.js';

/** The webhook's commands: `webhook` (the server), `rewrite` (what it would write), `certs` (local certificates). */

interface Out {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}
const processOut: Out = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) };

function webhookOverrides(opts: { mirror?: string; listen?: string; tlsCert?: string; tlsKey?: string; mirrorProbe?: boolean }): RawConfig {
  const webhook: RawConfig = {};
  if (opts.mirrorProbe === false) webhook.mirrorProbe = { enabled: false };
  if (opts.mirror !== undefined) webhook.mirrorHost = opts.mirror;
  if (opts.listen !== undefined) webhook.listen = opts.listen;
  if (opts.tlsCert !== undefined || opts.tlsKey !== undefined) webhook.tls = { cert: opts.tlsCert, key: opts.tlsKey };
  return Object.keys(webhook).length > 0 ? { webhook } : {};
}

/** `mirrorgate rewrite`: one line per image, in order; exit code 1 when any image is invalid. */
export function runRewrite(images: string[], opts: { config?: string; mirror?: string; json?: boolean }, out: Out = processOut, env: NodeJS.ProcessEnv = process.env): number {
  const config = loadConfig({ file: opts.config, env, overrides: webhookOverrides(opts) });
  const rules = rulesFromConfig(config);
  let invalid = false;
  for (const image of images) {
    const r = rewriteImage(image, rules);
    if (r.reason === 'invalid') invalid = true;
    if (opts.json) {
      out.stdout(`${JSON.stringify({ input: r.input, output: r.output, changed: r.changed, reason: r.reason })}\n`);
    } else {
      out.stdout(`${r.output}\n`);
      if (r.reason === 'invalid') out.stderr(`mirrorgate: ${JSON.stringify(image)} is not a valid image reference: ${r.detail ?? ''}\n`);
    }
  }
  return invalid ? 1 : 0;
}

/** `mirrorgate certs`: a CA and a serving certificate for local use. */
export function runCerts(opts: { out: string; service: string; namespace: string; days: number }, out: Out = processOut): void {
  mkdirSync(opts.out, { recursive: true });
  const bundle = generateBundle({
    now: systemClock.now(),
    validityMs: opts.days * 86_400_000,
    dnsNames: serviceDnsNames(opts.service, opts.namespace),
    ipAddresses: LOCAL_IPS,
  });
  const files: Array<[string, string, number]> = [
    ['ca.crt', bundle.caCert, 0o644],
    ['ca.key', bundle.caKey, 0o600],
    ['tls.crt', bundle.cert, 0o644],
    ['tls.key', bundle.key, 0o600],
  ];
  for (const [name, text, mode] of files) writeFileSync(path.join(opts.out, name), text, { mode });
  out.stdout(`wrote ${files.map(([n]) => path.join(opts.out, n)).join(', ')}\n`);
}

export function registerWebhookCommands(program: Command): void {
  program
    .command('rewrite')
    .description('print what the webhook would write for each image reference')
    .argument('<image...>', 'image references as written in a Pod spec')
    .option('--config <file>', 'configuration file (YAML)')
    .option('--mirror <host>', 'mirror registry host (overrides webhook.mirrorHost)')
    .option('--json', 'one JSON object per line: {"input","output","changed","reason"}')
    .action((images: string[], opts: { config?: string; mirror?: string; json?: boolean }) => {
      process.exitCode = runRewrite(images, opts);
    });

  program
    .command('certs')
    .description('write a CA and a serving certificate for the webhook (ca.crt, ca.key, tls.crt, tls.key)')
    .option('--out <dir>', 'output directory', 'certs')
    .option('--service <name>', 'webhook Service name (for the certificate names)', 'mirrorgate-webhook')
    .option('--namespace <ns>', 'webhook namespace (for the certificate names)', 'mirrorgate')
    .option('--days <n>', 'validity in days', (v) => Number.parseInt(v, 10), 365)
    .action((opts: { out: string; service: string; namespace: string; days: number }) => {
      if (!Number.isInteger(opts.days) || opts.days < 1) throw new Error('--days must be a positive integer');
      runCerts(opts);
    });

  program
    .command('webhook')
    .description('run the mutating admission webhook (HTTPS); with a kubeconfig also the pull secret sync and caBundle patching')
    .option('--config <file>', 'configuration file (YAML), reloaded when it changes')
    .option('--listen <addr>', 'listen address (overrides webhook.listen)')
    .option('--tls-cert <file>', 'serving certificate (PEM), reloaded when it changes')
    .option('--tls-key <file>', 'serving key (PEM)')
    .option('--mirror <host>', 'mirror registry host (overrides webhook.mirrorHost)')
    .option('--no-mirror-probe', 'do not probe the mirror; always rewrite (webhook.mirrorProbe.enabled: false)')
    .action(async (opts: { config?: string; listen?: string; tlsCert?: string; tlsKey?: string; mirror?: string; mirrorProbe?: boolean }) => {
      const load = { file: opts.config, env: process.env, overrides: webhookOverrides(opts) };
      const config = loadConfig(load);
      const logger = createLogger({ level: config.log.level });
      const metrics = new WebhookMetrics({ defaultMetrics: true });
      const configStore = new ConfigStore(load, { logger, metrics }, config);
      configStore.watch();
      // Loaded here, not at the top: the Kubernetes client is large and only this command needs it.
      const { loadKubeConfig, ownNamespace } = await import('./kube.js');
      const { startWebhook } = await import('./runtime.js');
      const kube = loadKubeConfig();
      const wh = config.webhook;

      let tls: TlsSource | undefined;
      if (wh.tls) {
        tls = new FileTlsSource(wh.tls, { logger, metrics });
        logger.info({ cert: wh.tls.cert }, 'serving certificate from files (reloaded on change)');
      } else if (!kube) {
        const namespace = ownNamespace(wh.namespace);
        const bundle = generateBundle({ now: systemClock.now(), validityMs: wh.certValidity, dnsNames: serviceDnsNames(wh.serviceName, namespace), ipAddresses: LOCAL_IPS });
        const dir = mkdtempSync(path.join(tmpdir(), 'mirrorgate-webhook-'));
        writeFileSync(path.join(dir, 'ca.crt'), bundle.caCert);
        tls = new MemoryTlsSource({ cert: bundle.cert, key: bundle.key });
        logger.info({ caFile: path.join(dir, 'ca.crt') }, 'self-generated serving certificate; its CA is in caFile');
      }
      if (kube) logger.info({ kubeconfig: kube.source }, 'cluster found: running pull secret sync and caBundle patching');
      else logger.warn('no kubeconfig (not in a cluster, KUBECONFIG unset): serving admission only, no pull secret sync, no caBundle patching');

      const listen = parseListen(wh.listen);
      const running = await startWebhook({
        configStore,
        logger,
        clock: systemClock,
        metrics,
        ...(listen ? { listen } : {}),
        ...(tls ? { tls } : {}),
        ...(kube ? { kube: { kc: kube.kc } } : {}),
      });
      onShutdown(logger, async () => {
        configStore.close();
        await running.close();
        tls?.close();
      });
    });
}
