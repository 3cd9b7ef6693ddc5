import { createHash } from 'node:crypto';
import { CoreV1Api, ListWatch, Watch, type KubeConfig, type V1Namespace, type V1Secret } from '@kubernetes/client-node';
import type { Logger } from '../common/logger.js';
import { InformerRunner } from './informer-runner.js';
import { statusOf } from './kube.js';
import { COPY_OF_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE, OPT_IN_LABEL, OPT_IN_VALUE, SOURCE_HASH_ANNOTATION } from './labels.js';
import type { WebhookMetrics } from './metrics.js';

/**
 * Keeps a copy of the mirror's pull secret in every opted-in namespace: created when a namespace opts in, updated
 * when the source rotates, removed when the namespace opts out. Reads come from informer caches; only writes go to
 * the API. A Secret of the same name that we do not own is never touched.
 */
export interface PullSecretSyncOptions {
  kc: KubeConfig;
  /** Namespace of the source Secret (the webhook's own). */
  namespace: string;
  sourceName: string;
  /** Name of the copies (what pods reference in imagePullSecrets). */
  targetName: string;
  mirrorHost: string;
  resyncMs: number;
  logger: Logger;
  metrics: WebhookMetrics;
  /** Informer restart backoff, shortened in tests. */
  backoff?: { initialDelayMs: number; maxDelayMs: number };
}

const COPY_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE},${COPY_OF_LABEL}`;

function hashOf(secret: V1Secret): string {
  const h = createHash('sha256');
  h.update(secret.type ?? '');
  for (const [k, v] of Object.entries(secret.data ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) h.update(`\0${k}\0${v}`);
  return h.digest('hex').slice(0, 32);
}

export class PullSecretSync {
  private readonly core: CoreV1Api;
  private readonly namespaces: ListWatch<V1Namespace>;
  private readonly sources: ListWatch<V1Secret>;
  private readonly copies: ListWatch<V1Secret>;
  private readonly runners: Array<InformerRunner<V1Namespace> | InformerRunner<V1Secret>>;
  private readonly queue = new Set<string>();
  private draining: Promise<void> | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private warnedSource = '';

  constructor(private readonly opts: PullSecretSyncOptions) {
    const { kc, namespace, sourceName } = opts;
    this.core = kc.makeApiClient(CoreV1Api);
    const watch = new Watch(kc);
    this.namespaces = new ListWatch('/api/v1/namespaces', watch, () => this.core.listNamespace(), false);
    const sourceSelector = `metadata.name=${sourceName}`;
    this.sources = new ListWatch(
      `/api/v1/namespaces/${namespace}/secrets`,
      watch,
      () => this.core.listNamespacedSecret({ namespace, fieldSelector: sourceSelector }),
      false,
      undefined,
      sourceSelector,
    );
    this.copies = new ListWatch(
      '/api/v1/secrets',
      watch,
      () => this.core.listSecretForAllNamespaces({ labelSelector: `${COPY_SELECTOR}=${sourceName}` }),
      false,
      `${COPY_SELECTOR}=${sourceName}`,
    );
    const runner = { logger: opts.logger, ...(opts.backoff ?? {}) };
    this.runners = [
      new InformerRunner(this.namespaces, { ...runner, name: 'namespaces' }),
      new InformerRunner(this.sources, { ...runner, name: 'pull-secret-source' }),
      new InformerRunner(this.copies, { ...runner, name: 'pull-secret-copies' }),
    ];
    this.namespaces.on('change', (ns) => this.enqueue(ns.metadata?.name));
    this.copies.on('change', (s) => this.enqueue(s.metadata?.namespace));
    this.sources.on('change', () => this.enqueueAll());
  }

  async start(): Promise<void> {
    this.stopped = false;
    await Promise.all(this.runners.map((r) => r.start()));
    this.enqueueAll();
    this.scheduleResync();
    this.opts.logger.info({ source: `${this.opts.namespace}/${this.opts.sourceName}`, copies: this.opts.targetName }, 'pull secret sync started');
  }

  private scheduleResync(): void {
    this.resyncTimer = setInterval(() => this.enqueueAll(), this.opts.resyncMs);
    this.resyncTimer.unref();
  }

  private enqueueAll(): void {
    for (const ns of this.namespaces.list()) this.enqueue(ns.metadata?.name);
    for (const s of this.copies.list()) this.enqueue(s.metadata?.namespace);
  }

  private enqueue(namespace: string | undefined): void {
    if (!namespace || this.stopped) return;
    this.queue.add(namespace);
    this.draining ??= this.drain().finally(() => {
      this.draining = undefined;
    });
  }

  /** One namespace at a time; a failed one is retried after a pause. */
  private async drain(): Promise<void> {
    while (this.queue.size > 0 && !this.stopped) {
      const ns = this.queue.values().next().value as string;
      this.queue.delete(ns);
      try {
        await this.reconcile(ns);
      } catch (err) {
        this.opts.metrics.pullSecretSync.inc({ action: 'error' });
        this.opts.logger.warn({ namespace: ns, err: (err as Error).message }, 'pull secret sync failed; retrying');
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => this.enqueue(ns), 2000);
        this.retryTimer.unref();
      }
    }
  }

  /** Resolves when the work queue is empty (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private wanted(ns: V1Namespace | undefined, source: V1Secret | undefined): boolean {
    if (!ns || !source) return false;
    if (ns.metadata?.deletionTimestamp || ns.status?.phase === 'Terminating') return false;
    if (ns.metadata?.name === this.opts.namespace && this.opts.targetName === this.opts.sourceName) return false;
    return ns.metadata?.labels?.[OPT_IN_LABEL] === OPT_IN_VALUE;
  }

  private checkSource(source: V1Secret): void {
    const rv = source.metadata?.resourceVersion ?? '';
    if (this.warnedSource === rv) return;
    this.warnedSource = rv;
    if (source.type !== 'kubernetes.io/dockerconfigjson') {
      this.opts.logger.warn({ type: source.type }, 'pull secret source is not of type kubernetes.io/dockerconfigjson; kubelets will ignore the copies');
      return;
    }
    try {
      const cfg = JSON.parse(Buffer.from(source.data?.['.dockerconfigjson'] ?? '', 'base64').toString('utf8')) as { auths?: Record<string, unknown> };
      if (!cfg.auths?.[this.opts.mirrorHost]) this.opts.logger.warn({ mirrorHost: this.opts.mirrorHost }, 'pull secret source has no entry for the mirror host');
    } catch {
      this.opts.logger.warn('pull secret source .dockerconfigjson is not JSON');
    }
  }

  async reconcile(namespace: string): Promise<void> {
    const { targetName: name, sourceName } = this.opts;
    const source = this.sources.get(sourceName, this.opts.namespace);
    const copy = this.copies.get(name, namespace);
    if (!this.wanted(this.namespaces.get(namespace), source) || !source) {
      if (!copy) return;
      try {
        await this.core.deleteNamespacedSecret({ name, namespace });
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
      this.opts.metrics.pullSecretSync.inc({ action: 'deleted' });
      this.opts.logger.info({ namespace, secret: name }, 'pull secret copy removed');
      return;
    }
    this.checkSource(source);
    const hash = hashOf(source);
    if (copy && copy.metadata?.annotations?.[SOURCE_HASH_ANNOTATION] === hash) return;
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name,
        namespace,
        labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [COPY_OF_LABEL]: sourceName },
        annotations: { [SOURCE_HASH_ANNOTATION]: hash },
        ...(copy?.metadata?.resourceVersion ? { resourceVersion: copy.metadata.resourceVersion } : {}),
      },
      type: source.type ?? 'kubernetes.io/dockerconfigjson',
      data: { ...(source.data ?? {}) },
    };
    if (copy) {
      // The type of a Secret is immutable: a changed type means delete and create.
      if (copy.type !== body.type) {
        await this.core.deleteNamespacedSecret({ name, namespace });
        delete body.metadata!.resourceVersion;
        await this.core.createNamespacedSecret({ namespace, body });
      } else {
        await this.core.replaceNamespacedSecret({ name, namespace, body });
      }
      this.opts.metrics.pullSecretSync.inc({ action: 'updated' });
      this.opts.logger.info({ namespace, secret: name }, 'pull secret copy updated');
      return;
    }
    try {
      await this.core.createNamespacedSecret({ namespace, body });
      this.opts.metrics.pullSecretSync.inc({ action: 'created' });
      this.opts.logger.info({ namespace, secret: name }, 'pull secret copy created');
    } catch (err) {
      if (statusOf(err) !== 409) throw err;
      // Either our own copy not yet in the cache (the informer will bring it) or a Secret someone else owns.
      const existing = await this.core.readNamespacedSecret({ name, namespace });
      if (existing.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE) {
        this.opts.metrics.pullSecretSync.inc({ action: 'conflict' });
        this.opts.logger.warn({ namespace, secret: name }, 'a Secret with the pull secret name exists and is not managed by mirrorgate; left alone');
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resyncTimer);
    clearTimeout(this.retryTimer);
    await Promise.all(this.runners.map((r) => r.stop()));
    await this.idle();
  }
}
