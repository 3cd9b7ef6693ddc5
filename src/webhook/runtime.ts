import type { KubeConfig } from '@kubernetes/client-node';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { Config } from '../config/schema.js';
import { parseListen, type ListenAddress } from '../config/listen.js';
import { Admitter, type AdmissionSettings } from './admit.js';
import { CertSecretManager } from './cert-secret.js';
import type { ConfigStore } from './config-store.js';
import { createWebhookHandler } from './http.js';
import { listenHttps } from './https-server.js';
import { ownNamespace } from './kube.js';
import { WebhookMetrics } from './metrics.js';
import { MirrorHealth } from './mirror-health.js';
import { cachedAuthorization, defaultPrefetchUrl, PrefetchNotifier } from './prefetch.js';
import { PullSecretSync } from './pull-secret-sync.js';
import { RewriteSummary } from './rewrite-summary.js';
import { rulesFromConfig } from './rules.js';
import type { TlsSource } from './tls-source.js';

export interface WebhookRuntimeOptions {
  configStore: ConfigStore;
  logger: Logger;
  clock: Clock;
  metrics?: WebhookMetrics;
  /** Overrides `webhook.listen` (tests use port 0). */
  listen?: ListenAddress;
  /** Certificate files or generated material; omitted with a cluster means the Secret-backed manager. */
  tls?: TlsSource;
  /** The mirror probe; default from `webhook.mirrorProbe`. Tests pass a stub. */
  health?: { reachable(): boolean; start?(): Promise<void>; stop?(): void };
  /** A cluster to talk to: enables the pull secret sync and, without `tls`, the caBundle patching. */
  kube?: { kc: KubeConfig; certCheckIntervalMs?: number; backoff?: { initialDelayMs: number; maxDelayMs: number } };
  env?: NodeJS.ProcessEnv;
}

export interface RunningWebhook {
  port: number;
  metrics: WebhookMetrics;
  tls: TlsSource;
  pullSecretSync: PullSecretSync | undefined;
  certs: CertSecretManager | undefined;
  close(): Promise<void>;
}

/** How often the info line counting rewritten pods is written (when there were any). */
const REWRITE_SUMMARY_INTERVAL_MS = 60_000;

/** Rules are compiled once per configuration object, not once per review. */
function settingsFor(store: ConfigStore): () => AdmissionSettings {
  let seen: Config | undefined;
  let settings: AdmissionSettings | undefined;
  return () => {
    const config = store.current();
    if (config !== seen || !settings) {
      seen = config;
      settings = { rules: rulesFromConfig(config), pullSecretName: config.webhook.injectPullSecret ? config.webhook.pullSecretName : undefined };
    }
    return settings;
  };
}

/** Wires the webhook together: configuration, admission, HTTPS, mirror probe and, with a cluster, the controllers. */
export async function startWebhook(opts: WebhookRuntimeOptions): Promise<RunningWebhook> {
  const { configStore, logger, clock } = opts;
  const config = configStore.current();
  const wh = config.webhook;
  const metrics = opts.metrics ?? new WebhookMetrics({ defaultMetrics: true });
  const namespace = ownNamespace(wh.namespace, opts.env);
  const cleanups: Array<() => Promise<void> | void> = [];
  let ready = false;

  try {
    const probe = wh.mirrorProbe;
    const health =
      opts.health ??
      (probe.enabled
        ? new MirrorHealth({ url: probe.url ?? `https://${wh.mirrorHost}/v2/`, intervalMs: probe.interval, timeoutMs: probe.timeout, logger, metrics })
        : undefined);
    if (health?.start) {
      await health.start();
      cleanups.push(() => health.stop?.());
    }
    const rewriteAllowed = (): boolean => {
      const p = configStore.current().webhook.mirrorProbe;
      return !health || !p.enabled || p.whenUnreachable === 'rewrite' || health.reachable();
    };

    const pf = wh.prefetch;
    const prefetch = pf.enabled
      ? new PrefetchNotifier({
          url: pf.url ?? defaultPrefetchUrl(probe.url ?? `https://${wh.mirrorHost}/v2/`),
          timeoutMs: pf.timeout,
          maxInFlight: pf.maxInFlight,
          authorization: pf.credentials ? cachedAuthorization(pf.credentials, opts.env ?? process.env, clock) : undefined,
          logger,
          metrics,
        })
      : undefined;
    if (prefetch) cleanups.push(() => prefetch.close());

    let tls = opts.tls;
    let certs: CertSecretManager | undefined;
    if (!tls) {
      if (!opts.kube) throw new Error('no TLS source: give certificate files, generated material or a cluster');
      certs = new CertSecretManager({
        kc: opts.kube.kc,
        namespace,
        secretName: wh.tlsSecretName,
        serviceName: wh.serviceName,
        webhookConfigurationName: wh.webhookConfigurationName,
        validityMs: wh.certValidity,
        renewBeforeMs: wh.certRenewBefore,
        ...(opts.kube.certCheckIntervalMs !== undefined ? { checkIntervalMs: opts.kube.certCheckIntervalMs } : {}),
        clock,
        logger,
        metrics,
      });
      await certs.start();
      cleanups.push(() => certs?.close());
      tls = certs;
    }

    let pullSecretSync: PullSecretSync | undefined;
    if (opts.kube && wh.injectPullSecret) {
      pullSecretSync = new PullSecretSync({
        kc: opts.kube.kc,
        namespace,
        sourceName: wh.pullSecretSourceName,
        targetName: wh.pullSecretName,
        mirrorHost: wh.mirrorHost,
        resyncMs: wh.resync,
        logger,
        metrics,
        ...(opts.kube.backoff ? { backoff: opts.kube.backoff } : {}),
      });
      await pullSecretSync.start();
      const sync = pullSecretSync;
      cleanups.push(() => sync.stop());
    }

    const summary = new RewriteSummary({ logger, clock, intervalMs: REWRITE_SUMMARY_INTERVAL_MS });
    summary.start();
    cleanups.push(() => summary.stop());
    const admitter = new Admitter({ settings: settingsFor(configStore), rewriteAllowed, metrics, logger, summary, prefetch: prefetch && ((images) => prefetch.notify(images)) });
    const app = createWebhookHandler({ admitter, metrics, logger, maxBodySize: wh.maxBodySize, ready: () => ready });
    const listen = opts.listen ?? parseListen(wh.listen);
    if (!listen) throw new Error(`invalid listen address ${wh.listen}`);
    const server = await listenHttps(app, listen, tls, logger);
    cleanups.push(() => server.close());
    ready = true;
    logger.info({ port: server.port, mirrorHost: wh.mirrorHost, cluster: opts.kube ? namespace : false }, 'webhook serving /mutate over HTTPS');

    return {
      port: server.port,
      metrics,
      tls,
      pullSecretSync,
      certs,
      close: async () => {
        ready = false;
        for (const c of cleanups.reverse()) await c();
      },
    };
  } catch (err) {
    for (const c of cleanups.reverse()) await c();
    throw err;
  }
}
