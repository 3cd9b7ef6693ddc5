import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/common/logger.js';
import { configSchema } from '../../../src/config/schema.js';
import type { AdmissionRequest, AdmissionReviewResponse, Pod } from '../../../src/webhook/admission-types.js';
import { Admitter, FAIL_OPEN_WARNING } from '../../../src/webhook/admit.js';
import { WebhookMetrics } from '../../../src/webhook/metrics.js';
import { decodeReview } from '../../../src/webhook/review.js';
import { rulesFromConfig } from '../../../src/webhook/rules.js';
import { captureLogs } from '../../helpers/log-capture.js';
import { FIXTURE_FILES, loadFixture } from './fixtures.js';

const M = 'registry.krisalee.dev.joona.fr';
const D64 = 'a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4';
const SECRET = 'mirrorgate-pull-secret';

function admitter(opts: { reachable?: boolean; inject?: boolean; mutate?: () => never } = {}) {
  const config = configSchema.parse({});
  const metrics = new WebhookMetrics();
  const a = new Admitter({
    settings: () => ({ rules: rulesFromConfig(config), pullSecretName: opts.inject === false ? undefined : SECRET }),
    rewriteAllowed: () => opts.reachable ?? true,
    metrics,
    logger: silentLogger(),
    summary: { add: () => {} },
    ...(opts.mutate ? { mutate: opts.mutate } : {}),
  });
  return { a, metrics };
}

function run(a: Admitter, review: unknown): { res: AdmissionReviewResponse; pod: Pod; patch: Operation[] } {
  const d = decodeReview(review);
  if (!d.ok) throw new Error(d.message);
  const res = a.admit(d.request);
  const patch: Operation[] = res.response.patch ? JSON.parse(Buffer.from(res.response.patch, 'base64').toString('utf8')) : [];
  const original = d.request.object as Pod;
  const pod = fastJsonPatch.applyPatch(structuredClone(original), patch, true, false).newDocument as Pod;
  return { res, pod, patch };
}

const images = (pod: Pod, field: 'containers' | 'initContainers' | 'ephemeralContainers' = 'containers') =>
  (pod.spec?.[field] ?? []).map((c) => c.image);
const originals = (pod: Pod) => JSON.parse(pod.metadata?.annotations?.['mirrorgate.io/original-images'] ?? '{}') as Record<string, string>;

describe('admission of the recorded fixtures', () => {
  it('kubectl run nginx: rewritten with :latest, secret added, original recorded', () => {
    const { a } = admitter();
    const review = loadFixture('pod-create-kubectl-run.json');
    const { res, pod } = run(a, review);
    expect(res).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true, patchType: 'JSONPatch' } });
    expect(images(pod)).toEqual([`${M}/library/nginx:latest`]);
    expect(pod.spec?.imagePullSecrets).toEqual([{ name: SECRET }]);
    expect(originals(pod)).toEqual({ web: 'nginx' });
    expect(res.response.warnings).toBeUndefined();
  });

  it('dry run: same answer, no side effects needed', () => {
    const { a } = admitter();
    const { res, pod } = run(a, loadFixture('pod-create-dry-run.json'));
    expect(res.response.allowed).toBe(true);
    expect(images(pod)).toEqual([`${M}/library/redis:7`]);
    expect(pod.spec?.imagePullSecrets).toEqual([{ name: SECRET }]);
  });

  it('multi-registry pod: each image routed, the rest left alone, existing secret kept', () => {
    const { a, metrics } = admitter();
    const { pod } = run(a, loadFixture('pod-create-multi-registry.json'));
    expect(images(pod, 'initContainers')).toEqual([`${M}/library/busybox:1.36`]);
    expect(images(pod)).toEqual([
      `${M}/ghcr.io/example-org/app:v2.3.1`,
      `${M}/library/redis@sha256:${D64}`,
      `${M}/quay.io/prometheus/node-exporter:v1.8.2`,
      'localhost:5000/tools/debug:1',
      `${M}/library/nginx:1.27`,
    ]);
    expect(pod.spec?.imagePullSecrets).toEqual([{ name: 'existing-secret' }, { name: SECRET }]);
    expect(pod.metadata?.annotations?.['example.com/note']).toBe('fixture');
    expect(originals(pod)).toEqual({
      'init-config': 'busybox:1.36',
      app: 'ghcr.io/example-org/app:v2.3.1',
      sidecar: `docker.io/library/redis@sha256:${D64}`,
      metrics: 'quay.io/prometheus/node-exporter:v1.8.2',
    });
    return metrics.registry.getSingleMetricAsString('mirrorgate_webhook_images_total').then((text) => {
      expect(text).toContain('result="rewritten",reason="rewritten"} 4');
      expect(text).toContain('reason="not-upstream"} 1');
      expect(text).toContain('reason="already-mirrored"} 1');
    });
  });

  it('pod from a ReplicaSet (generateName, no name) is rewritten; the Deployment itself never is', () => {
    const { a } = admitter();
    const review = loadFixture('pod-create-from-replicaset.json');
    const { pod } = run(a, review);
    expect(images(pod)).toEqual([`${M}/bitnami/nginx:1.27`]);
    expect(pod.metadata?.ownerReferences).toEqual((review.request.object as Pod).metadata?.ownerReferences);

    const deployment = structuredClone(review);
    deployment.request.kind = { group: 'apps', version: 'v1', kind: 'Deployment' };
    deployment.request.resource = { group: 'apps', version: 'v1', resource: 'deployments' };
    const r = run(a, deployment);
    expect(r.patch).toEqual([]);
    expect(r.res.response.allowed).toBe(true);
  });

  it('kubectl debug on a pod without the mirror secret: ephemeral image left alone, with a warning', () => {
    const { a } = admitter();
    const { res, patch } = run(a, loadFixture('pod-update-ephemeral-kubectl-debug.json'));
    expect(patch).toEqual([]);
    expect(res.response.warnings?.[0]).toMatch(/no imagePullSecret mirrorgate-pull-secret/);
  });

  it('kubectl debug on a pod the webhook admitted: only the new ephemeral container is rewritten', () => {
    const { a } = admitter();
    const review = loadFixture('pod-update-ephemeral-kubectl-debug.json');
    for (const o of [review.request.object, review.request.oldObject] as Pod[]) o.spec!.imagePullSecrets = [{ name: SECRET }];
    const { pod, patch } = run(a, review);
    expect(images(pod, 'ephemeralContainers')).toEqual([`${M}/library/busybox:1.36`]);
    expect(images(pod)).toEqual(['nginx']); // unchanged container: rewriting would restart it
    expect(patch.every((op) => op.path.startsWith('/spec/ephemeralContainers/'))).toBe(true);
  });

  it('kubectl debug with pull secret injection off rewrites the ephemeral container', () => {
    const { a } = admitter({ inject: false });
    const { pod } = run(a, loadFixture('pod-update-ephemeral-kubectl-debug.json'));
    expect(images(pod, 'ephemeralContainers')).toEqual([`${M}/library/busybox:1.36`]);
  });

  it('kubectl set image on an admitted pod: the new image is rewritten, imagePullSecrets untouched', () => {
    const { a } = admitter();
    const review = loadFixture('pod-update-set-image.json');
    for (const o of [review.request.object, review.request.oldObject] as Pod[]) o.spec!.imagePullSecrets = [{ name: SECRET }];
    const { pod, patch } = run(a, review);
    expect(images(pod)).toEqual([`${M}/library/nginx:1.27`]);
    expect(images(pod, 'ephemeralContainers')).toEqual(['busybox:1.36']); // immutable through the pod itself
    expect(originals(pod)).toEqual({ web: 'nginx:1.27' });
    expect(patch.some((op) => op.path.startsWith('/spec/imagePullSecrets'))).toBe(false);
  });

  it.each(FIXTURE_FILES)('%s: the answer echoes the uid and a second admission of the result changes nothing', (name) => {
    const { a } = admitter();
    const review = loadFixture(name);
    const first = run(a, review);
    expect(first.res.response.uid).toBe(review.request.uid);
    const again = structuredClone(review);
    again.request.object = first.pod as Record<string, unknown>;
    expect(run(a, again).patch).toEqual([]);
  });
});

describe('admission rules', () => {
  function create(pod: Pod): unknown {
    const review = loadFixture('pod-create-kubectl-run.json');
    review.request.object = pod as Record<string, unknown>;
    return review;
  }
  const basePod = (): Pod => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', labels: {} }, spec: { containers: [{ name: 'c', image: 'nginx' }] } });

  it('skips static (mirror) pods and opted-out pods', () => {
    const { a } = admitter();
    const staticPod = basePod();
    staticPod.metadata!.annotations = { 'kubernetes.io/config.mirror': 'abc' };
    expect(run(a, create(staticPod)).patch).toEqual([]);
    const optOut = basePod();
    optOut.metadata!.labels = { 'mirrorgate.io/mirror': 'disabled' };
    expect(run(a, create(optOut)).patch).toEqual([]);
  });

  it('leaves images alone while the mirror is unreachable, and says so', () => {
    const { a } = admitter({ reachable: false });
    const r = run(a, create(basePod()));
    expect(r.patch).toEqual([]);
    expect(r.res.response.warnings).toEqual(['mirrorgate: the mirror is unreachable; images left unchanged']);
  });

  it('does not duplicate an existing pull secret entry', () => {
    const { a } = admitter();
    const pod = basePod();
    pod.spec!.imagePullSecrets = [{ name: SECRET }];
    const r = run(a, create(pod));
    expect(r.pod.spec?.imagePullSecrets).toEqual([{ name: SECRET }]);
  });

  it('warns, briefly, about invalid images', () => {
    const { a } = admitter();
    const pod = basePod();
    pod.spec!.containers = [{ name: 'c', image: 'Not/Valid' + 'x'.repeat(200) }];
    const r = run(a, create(pod));
    expect(r.patch).toEqual([]);
    expect(r.res.response.warnings?.[0]?.length).toBeLessThanOrEqual(120);
  });

  it('fails open when the mutation throws', () => {
    const { a, metrics } = admitter({
      mutate: () => {
        throw new Error('boom');
      },
    });
    const r = run(a, create(basePod()));
    expect(r.res.response).toEqual({ uid: expect.any(String), allowed: true, warnings: [FAIL_OPEN_WARNING] });
    return metrics.registry.getSingleMetricAsString('mirrorgate_webhook_fail_open_total').then((t) => expect(t).toMatch(/ 1$/m));
  });

  it('refuses malformed envelopes, keeping the uid when there is one', () => {
    expect(decodeReview({ kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1beta1', request: { uid: 'u' } })).toMatchObject({ ok: false, uid: 'u', code: 'REVIEW_UNSUPPORTED' });
    expect(decodeReview({ kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1', request: {} })).toMatchObject({ ok: false, uid: undefined });
    expect(decodeReview([])).toMatchObject({ ok: false, uid: undefined });
    expect(decodeReview({ kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1', request: { uid: 'u', object: 3 } })).toMatchObject({ ok: false, uid: 'u' });
  });
});

describe('what the admitter logs', () => {
  function logged(level: string, reviews: unknown[]) {
    const logs = captureLogs(level);
    const counted: Array<[number, boolean]> = [];
    const a = new Admitter({
      settings: () => ({ rules: rulesFromConfig(configSchema.parse({})), pullSecretName: SECRET }),
      rewriteAllowed: () => true,
      metrics: new WebhookMetrics(),
      logger: logs.logger,
      summary: { add: (images, dryRun) => void counted.push([images, dryRun]) },
    });
    for (const review of reviews) run(a, review);
    return { logs, counted };
  }
  const invalidImage = () => {
    const review = loadFixture('pod-create-kubectl-run.json');
    (review.request.object.spec as { containers: Array<{ image: string }> }).containers[0]!.image = 'Not/Valid';
    return review;
  };

  it('counts each rewritten pod for the summary, details it at debug, and logs images left with a warning at info', () => {
    const reviews = [loadFixture('pod-create-multi-registry.json'), loadFixture('pod-create-dry-run.json'), invalidImage()];
    const info = logged('info', reviews);
    expect(info.logs.lines().map((l) => [l.level, l.msg])).toEqual([[30, 'left pod images unchanged']]);
    expect(info.logs.lines()[0]).toMatchObject({ pod: 'web', images: [{ container: 'web', from: 'Not/Valid', reason: 'invalid' }] });
    expect(info.counted).toEqual([
      [4, false],
      [1, true],
    ]);
    const debug = logged('debug', reviews);
    expect(debug.logs.lines().map((l) => [l.level, l.msg])).toEqual([
      [20, 'rewrote pod images'],
      [20, 'rewrote pod images'],
      [30, 'left pod images unchanged'],
    ]);
    expect(debug.logs.lines()[0]).toMatchObject({ namespace: 'team-a', pod: 'multi', operation: 'CREATE', dryRun: false });
  });

  it('writes the line per review exactly as the redacting logger writes it, hostile names included', () => {
    const hostile = loadFixture('pod-create-kubectl-run.json');
    hostile.request.namespace = { token: 'secret-a', password: 'secret-b' } as unknown as string;
    (hostile.request.object.metadata as Record<string, unknown>).name = { authorization: 'secret-c' };
    const { logs } = logged('debug', [loadFixture('pod-create-multi-registry.json'), hostile, invalidImage()]);
    const lines = logs.lines();
    expect(lines).toHaveLength(3);
    expect(logs.text()).not.toMatch(/secret-[abc]/);

    // Written again through the product's logger, with its redaction rules, each line comes out the same.
    const again = captureLogs('debug');
    for (const { level, time: _time, pid: _pid, msg, ...fields } of lines) again.logger[level === 20 ? 'debug' : 'info'](fields, String(msg));
    const strip = ({ time: _time, ...rest }: Record<string, unknown>) => rest;
    expect(again.lines().map(strip)).toEqual(lines.map(strip));
  });
});
