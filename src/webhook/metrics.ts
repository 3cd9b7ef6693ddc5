import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The webhook's metrics on their own Registry (never the global one), so several servers can live in one process.
 * Every label takes values from a fixed set.
 */
export class WebhookMetrics {
  readonly registry: Registry;
  /** Images seen, by result (rewritten/unchanged) and reason (REWRITE_REASONS and SKIP_REASONS). */
  readonly images: Counter<'result' | 'reason'>;
  /** Reviews answered, by operation and outcome (patched, allowed, rejected, failed_open). */
  readonly reviews: Counter<'operation' | 'outcome'>;
  readonly duration: Histogram<'outcome'>;
  readonly failOpen: Counter;
  readonly mirrorReachable: Gauge;
  readonly configReloads: Counter<'result'>;
  readonly certReloads: Counter<'result'>;
  readonly certNotAfter: Gauge;
  readonly pullSecretSync: Counter<'action'>;
  /** Prefetch notices to the mirror, by result (accepted, refused, failed, dropped). */
  readonly prefetch: Counter<'result'>;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registry = (this.registry = new Registry());
    if (options.defaultMetrics) collectDefaultMetrics({ register: registry });
    this.images = new Counter({ name: 'mirrorgate_webhook_images_total', help: 'Container images seen by the webhook', labelNames: ['result', 'reason'], registers: [registry] });
    this.reviews = new Counter({ name: 'mirrorgate_webhook_reviews_total', help: 'AdmissionReviews answered', labelNames: ['operation', 'outcome'], registers: [registry] });
    this.duration = new Histogram({
      name: 'mirrorgate_webhook_review_duration_seconds',
      help: 'Time to answer an AdmissionReview, from the parsed body to the response object',
      labelNames: ['outcome'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
      registers: [registry],
    });
    this.failOpen = new Counter({ name: 'mirrorgate_webhook_fail_open_total', help: 'Reviews admitted unchanged because of an internal error', registers: [registry] });
    this.mirrorReachable = new Gauge({ name: 'mirrorgate_webhook_mirror_reachable', help: '1 when the last probe of the mirror succeeded', registers: [registry] });
    this.configReloads = new Counter({ name: 'mirrorgate_webhook_config_reloads_total', help: 'Configuration reloads', labelNames: ['result'], registers: [registry] });
    this.certReloads = new Counter({ name: 'mirrorgate_webhook_cert_reloads_total', help: 'Serving certificate loads', labelNames: ['result'], registers: [registry] });
    this.certNotAfter = new Gauge({ name: 'mirrorgate_webhook_cert_not_after_seconds', help: 'Expiry of the serving certificate (unix seconds)', registers: [registry] });
    this.pullSecretSync = new Counter({ name: 'mirrorgate_webhook_pull_secret_sync_total', help: 'Pull secret copies written or removed', labelNames: ['action'], registers: [registry] });
    this.prefetch = new Counter({
      name: 'mirrorgate_webhook_prefetch_total',
      help: 'Notices to the mirror of the images an admitted pod will pull, by result (accepted, refused, failed, dropped)',
      labelNames: ['result'],
      registers: [registry],
    });
  }
}

const OPERATIONS = new Set(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);
/** Keeps the operation label bounded whatever a client sends. */
export function operationLabel(op: unknown): string {
  return typeof op === 'string' && OPERATIONS.has(op) ? op : 'other';
}
