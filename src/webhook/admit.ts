import type { Logger } from '../common/logger.js';
import type { RewriteRules } from '../reference/rewrite.js';
import type { AdmissionRequest, AdmissionReviewResponse, Pod } from './admission-types.js';
import { operationLabel, type WebhookMetrics } from './metrics.js';
import { mutatePod, type ImageDecision } from './pod-mutation.js';
import { prefetchImages } from './prefetch.js';
import { allowed, patched } from './review.js';
import type { RewriteSummary } from './rewrite-summary.js';

export interface AdmissionSettings {
  rules: RewriteRules;
  /** Undefined when pull secret injection is off. */
  pullSecretName: string | undefined;
}

export interface AdmitterDeps {
  /** Read at every review, so a configuration reload takes effect at once. */
  settings: () => AdmissionSettings;
  /** False while the mirror is unreachable and images should be left alone. */
  rewriteAllowed: () => boolean;
  metrics: WebhookMetrics;
  logger: Logger;
  /** Counts rewritten pods for the periodic info line. */
  summary: Pick<RewriteSummary, 'add'>;
  /** The mutation; replaceable so tests can make it throw and watch the webhook fail open. */
  mutate?: typeof mutatePod;
  /**
   * Told the images (mirror-relative names) a real admission sent to the mirror. Must return at once; it is never
   * awaited, and whatever it does cannot change the answer.
   */
  prefetch?: ((images: readonly string[]) => void) | undefined;
}

/** Strings only: an object from a hostile review could carry keys the redaction rules look for. */
function text(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export const FAIL_OPEN_WARNING = 'mirrorgate: internal error; pod admitted unchanged';

/** The admission handler: a review request in, a review response out. No HTTP here, and no network call. */
export class Admitter {
  private readonly mutate: typeof mutatePod;
  /**
   * For the line per review: its keys are fixed below, none is on a redaction path and its values are strings,
   * booleans or the image list, so the redaction rules (two thirds of the cost of a line) cannot change it and are
   * left out. A unit test holds the line to what the redacting logger writes.
   */
  private readonly reviewLogger: Logger;
  constructor(private readonly deps: AdmitterDeps) {
    this.mutate = deps.mutate ?? mutatePod;
    this.reviewLogger = deps.logger.child({}, { redact: [] });
  }

  admit(request: AdmissionRequest): AdmissionReviewResponse {
    const started = performance.now();
    const op = operationLabel(request.operation);
    let outcome = 'allowed';
    try {
      const result = this.decide(request);
      outcome = result.response.patch ? 'patched' : 'allowed';
      return result;
    } catch (err) {
      // Fail open: a bug here must never stop pods from being created.
      outcome = 'failed_open';
      this.deps.metrics.failOpen.inc();
      this.deps.logger.error({ err, uid: request.uid, namespace: request.namespace, name: request.name }, 'admission failed; admitting unchanged');
      return allowed(request.uid, [FAIL_OPEN_WARNING]);
    } finally {
      this.deps.metrics.reviews.inc({ operation: op, outcome });
      this.deps.metrics.duration.observe({ outcome }, (performance.now() - started) / 1000);
    }
  }

  private decide(request: AdmissionRequest): AdmissionReviewResponse {
    const isPod = request.kind?.group === '' && request.kind.kind === 'Pod' && request.resource?.resource === 'pods';
    const op = request.operation;
    // Pods only: rewriting Deployments and other workloads would make them drift from what GitOps applied.
    if (!isPod || (op !== 'CREATE' && op !== 'UPDATE') || !request.object) return allowed(request.uid);

    const settings = this.deps.settings();
    const pod = request.object as Pod;
    const result = this.mutate(pod, {
      operation: op,
      subResource: request.subResource || undefined,
      oldPod: (request.oldObject ?? undefined) as Pod | undefined,
      rules: settings.rules,
      pullSecretName: settings.pullSecretName,
      rewriteAllowed: this.deps.rewriteAllowed(),
    });
    for (const d of result.decisions) {
      this.deps.metrics.images.inc({ result: d.changed ? 'rewritten' : 'unchanged', reason: d.reason });
    }
    const changed = result.decisions.filter((d) => d.changed);
    const dryRun = request.dryRun === true;
    // A dry run creates nothing, so nothing will be pulled.
    if (changed.length > 0 && !dryRun) this.notifyPrefetch(changed, settings.rules.mirrorHost, request.uid);
    if (changed.length > 0) this.deps.summary.add(changed.length, dryRun);
    // A rewrite is counted for the summary and detailed at debug; images left alone with a warning are logged at
    // info, since for a pod a controller creates the log is where its warnings can be read.
    const level = result.warnings.length > 0 ? 'info' : changed.length > 0 ? 'debug' : undefined;
    if (level !== undefined && this.reviewLogger.isLevelEnabled(level)) {
      this.reviewLogger[level](
        {
          uid: request.uid,
          namespace: text(request.namespace),
          pod: text(pod.metadata?.name) ?? text(pod.metadata?.generateName),
          operation: op,
          subResource: text(request.subResource),
          dryRun,
          images: result.decisions.map((d) => ({ container: d.container, from: d.input, to: d.output, reason: d.reason })),
        },
        changed.length > 0 ? 'rewrote pod images' : 'left pod images unchanged',
      );
    }
    return patched(request.uid, result.patch, result.warnings);
  }

  private notifyPrefetch(changed: readonly ImageDecision[], mirrorHost: string, uid: string): void {
    if (!this.deps.prefetch) return;
    try {
      this.deps.prefetch(prefetchImages(changed, mirrorHost));
    } catch (err) {
      // Never a reason to fail the admission open or closed: the pod is admitted as mutated.
      this.deps.logger.debug({ err, uid }, 'prefetch notice failed');
    }
  }
}
