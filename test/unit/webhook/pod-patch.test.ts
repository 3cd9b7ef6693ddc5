import fastJsonPatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import type { Container, Pod, PodSpec } from '../../../src/webhook/admission-types.js';
import { ORIGINAL_IMAGES_ANNOTATION } from '../../../src/webhook/labels.js';
import { PodEdit, type PatchOperation } from '../../../src/webhook/pod-edit.js';
import { mutatePod, type ContainerField, type MutationContext, type MutationResult } from '../../../src/webhook/pod-mutation.js';
import { rulesFromConfig } from '../../../src/webhook/rules.js';
import { Gen } from '../reference/generate.js';
import { FIXTURE_FILES, loadFixture } from './fixtures.js';

/**
 * The patch is built from the mutation instead of diffing two copies of the pod. These properties hold it to
 * what the diff gave: on generated pods and on every recorded review, the patch has exactly the operations of
 * fast-json-patch's `compare` of the input and the mutated pod, fast-json-patch's `applyPatch` (validating) of it
 * to the input gives the mutated pod, the mutated pod is the decisions applied to a deep copy, and the input is
 * never modified.
 */

const SECRET = 'mirrorgate-pull-secret';
const MIRROR = 'registry.krisalee.dev.joona.fr';
const FIELDS: readonly ContainerField[] = ['initContainers', 'containers', 'ephemeralContainers'];
const rules = rulesFromConfig(configSchema.parse({}));

const byPath = (ops: readonly PatchOperation[]) => [...ops].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

/** The mutation as it was written before: the decisions applied, field by field, to a deep copy. */
function deepCopyMutation(pod: Pod, r: MutationResult, ctx: MutationContext): Pod {
  const copy = structuredClone(pod);
  for (const field of FIELDS) {
    const decisions = r.decisions.filter((d) => d.field === field);
    if (decisions.length === 0) continue; // a field the operation may not change
    const list = copy.spec?.[field];
    const offered = (Array.isArray(list) ? list : []).filter((c) => typeof c.image === 'string' && c.image !== '');
    expect(offered.map((c) => c.image)).toEqual(decisions.map((d) => d.input));
    offered.forEach((c, i) => {
      if (decisions[i]!.changed) c.image = decisions[i]!.output;
    });
  }
  const rewritten = r.decisions.filter((d) => d.changed);
  if (rewritten.length === 0) return copy;
  const spec = copy.spec!;
  if (ctx.operation === 'CREATE' && ctx.pullSecretName !== undefined && !(spec.imagePullSecrets ?? []).some((s) => s?.name === ctx.pullSecretName)) {
    spec.imagePullSecrets = [...(spec.imagePullSecrets ?? []), { name: ctx.pullSecretName }];
  }
  if (ctx.subResource !== 'ephemeralcontainers') {
    let originals: Record<string, string> = {};
    try {
      const parsed: unknown = JSON.parse(copy.metadata?.annotations?.[ORIGINAL_IMAGES_ANNOTATION] ?? '');
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
        originals = Object.fromEntries(Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string'));
      }
    } catch {
      // replaced below
    }
    for (const d of rewritten) originals[d.container] = d.input;
    const metadata = (copy.metadata ??= {});
    metadata.annotations = { ...(metadata.annotations ?? {}), [ORIGINAL_IMAGES_ANNOTATION]: JSON.stringify(originals) };
  }
  return copy;
}

function checkMutation(pod: Pod, ctx: MutationContext, what: string): MutationResult {
  const before = structuredClone(pod);
  const r = mutatePod(pod, ctx);
  expect(pod, `${what}: the input is not modified`).toStrictEqual(before);
  expect(r.pod, `${what}: the mutated pod is the decisions applied to a deep copy`).toStrictEqual(deepCopyMutation(before, r, ctx));
  expect(byPath(r.patch), `${what}: the operations of a diff`).toStrictEqual(byPath(fastJsonPatch.compare(before, r.pod) as PatchOperation[]));
  const applied = fastJsonPatch.applyPatch(structuredClone(before), JSON.parse(JSON.stringify(r.patch)), true, false).newDocument;
  expect(applied, `${what}: applyPatch of the patch to the input gives the mutated pod`).toStrictEqual(r.pod);
  return r;
}

function genImage(g: Gen): string | number | undefined {
  switch (g.int(10)) {
    case 0:
    case 1:
    case 2:
      return g.validReference();
    case 3:
      return g.mutated();
    case 4:
      return `${MIRROR}/library/${g.component()}:1`;
    case 5:
    case 6:
      return g.pick(['nginx', 'busybox:1.36', 'ghcr.io/example-org/app:v2', 'quay.io/a/b@sha256:' + 'a'.repeat(64), 'localhost:5000/x']);
    case 7:
      return '';
    case 8:
      return g.chance(0.2) ? 42 : undefined;
    default:
      return g.hostileReference();
  }
}

function genContainer(g: Gen, i: number): Container {
  const c: Container = { name: g.chance(0.1) ? 'same' : `c${i}` };
  const image = genImage(g);
  if (image !== undefined) c.image = image as string;
  if (g.chance(0.5)) c.command = ['sh', '-c', `echo ${i}`];
  if (g.chance(0.3)) c.resources = { limits: { cpu: '100m' } };
  return c;
}

function genAnnotations(g: Gen): unknown {
  return g.pick([
    undefined,
    null,
    {},
    { 'example.com/note': 'x', 'a~b/c': 'escaped keys' },
    { [ORIGINAL_IMAGES_ANNOTATION]: JSON.stringify({ c0: 'nginx', gone: 'busybox' }) },
    { [ORIGINAL_IMAGES_ANNOTATION]: 'not json' },
    { [ORIGINAL_IMAGES_ANNOTATION]: '[1]' },
    { 'kubernetes.io/config.mirror': 'abc' },
    'not a map',
  ]);
}

function genPod(g: Gen): Pod {
  const spec: PodSpec = { restartPolicy: 'Always' };
  for (const field of FIELDS) if (g.chance(field === 'containers' ? 0.95 : 0.4)) spec[field] = Array.from({ length: g.int(5) }, (_, i) => genContainer(g, i));
  const secrets = g.pick([undefined, undefined, null, [], [{ name: 'existing-secret' }], [{ name: SECRET }], [null, { name: 'x' }]]);
  if (secrets !== undefined) spec.imagePullSecrets = secrets as PodSpec['imagePullSecrets'];
  const pod: Pod = { apiVersion: 'v1', kind: 'Pod' };
  const metadataKind = g.int(20);
  if (metadataKind === 0) pod.metadata = null as unknown as Pod['metadata'];
  else if (metadataKind > 1) {
    const metadata: NonNullable<Pod['metadata']> = { name: 'p', namespace: 'team-a', managedFields: [{ manager: 'kubectl', fieldsV1: { 'f:spec': {} } }] };
    if (g.chance(0.8)) metadata.labels = g.chance(0.1) ? { 'mirrorgate.io/mirror': 'disabled' } : { app: 'x' };
    const annotations = genAnnotations(g);
    if (annotations !== undefined) metadata.annotations = annotations as Record<string, string>;
    pod.metadata = metadata;
  }
  if (g.chance(0.95)) pod.spec = spec;
  if (g.chance(0.5)) pod.status = { phase: 'Pending' };
  return pod;
}

function genContext(g: Gen, pod: Pod): MutationContext {
  const operation = g.chance(0.6) ? 'CREATE' : 'UPDATE';
  let oldPod: Pod | undefined;
  if (operation === 'UPDATE') {
    oldPod = structuredClone(pod);
    for (const field of FIELDS) {
      const list = oldPod.spec?.[field];
      if (!Array.isArray(list)) continue;
      for (const c of list) if (g.chance(0.4)) c.image = 'nginx:previous';
      if (list.length > 0 && g.chance(0.3)) list.pop();
    }
  }
  return {
    operation,
    subResource: operation === 'UPDATE' ? g.pick([undefined, '', 'ephemeralcontainers', 'status']) : undefined,
    oldPod,
    rules,
    pullSecretName: g.chance(0.8) ? SECRET : undefined,
    rewriteAllowed: g.chance(0.9),
  };
}

describe('the patch built from the mutation equals the diff', () => {
  it('on 2000 generated pods', () => {
    let patched = 0;
    const shapes = new Set<string>();
    for (let seed = 1; seed <= 2000; seed++) {
      const g = new Gen(seed);
      const pod = genPod(g);
      const r = checkMutation(pod, genContext(g, pod), `seed ${seed}`);
      if (r.patch.length > 0) patched++;
      for (const op of r.patch) shapes.add(`${op.op} ${op.path.replace(/\/\d+/g, '/N')}`);
    }
    // The generator must reach every kind of operation, and pods that get none.
    expect(patched).toBeGreaterThan(300);
    expect(patched).toBeLessThan(2000);
    expect([...shapes].sort()).toEqual([
      'add /metadata',
      'add /metadata/annotations',
      'add /metadata/annotations/mirrorgate.io~1original-images',
      'add /spec/imagePullSecrets',
      'add /spec/imagePullSecrets/N',
      'replace /metadata',
      'replace /metadata/annotations',
      'replace /metadata/annotations/mirrorgate.io~1original-images',
      'replace /spec/containers/N/image',
      'replace /spec/ephemeralContainers/N/image',
      'replace /spec/imagePullSecrets',
      'replace /spec/initContainers/N/image',
    ]);
  });

  it.each(FIXTURE_FILES)('on %s, with and without the pull secret on the pod and with injection off', (name) => {
    for (const variant of ['as recorded', 'secret on the pod', 'injection off'] as const) {
      const request = loadFixture(name).request as ReturnType<typeof loadFixture>['request'] & { operation: 'CREATE' | 'UPDATE'; subResource?: string; oldObject: unknown };
      const pod = request.object as Pod;
      if (variant === 'secret on the pod') {
        for (const p of [pod, request.oldObject as Pod | null]) if (p?.spec) p.spec.imagePullSecrets = [...(p.spec.imagePullSecrets ?? []), { name: SECRET }];
      }
      const r = checkMutation(
        pod,
        {
          operation: request.operation,
          subResource: request.subResource || undefined,
          oldPod: (request.oldObject ?? undefined) as Pod | undefined,
          rules,
          pullSecretName: variant === 'injection off' ? undefined : SECRET,
          rewriteAllowed: true,
        },
        `${name} (${variant})`,
      );
      if (name.startsWith('pod-create')) expect(r.patch.length).toBeGreaterThan(0);
    }
  });

  it('escapes ~ and / in an annotation key (RFC 6901)', () => {
    const pod: Pod = { metadata: { annotations: { other: 'x' } } };
    const edit = new PodEdit(pod);
    edit.setAnnotation('a~b/c', 'v');
    expect(edit.patch).toEqual([{ op: 'add', path: '/metadata/annotations/a~0b~1c', value: 'v' }]);
    expect(fastJsonPatch.applyPatch(structuredClone(pod), edit.patch, true, false).newDocument).toEqual(edit.pod);
  });

  it('refuses to annotate a pod whose metadata is not an object (the admitter then fails open)', () => {
    const edit = new PodEdit({ metadata: ['not', 'an', 'object'] as unknown as Pod['metadata'] });
    expect(() => edit.setAnnotation('k', 'v')).toThrow(/metadata is not an object/);
  });
});
