import { rewriteImage, type RewriteReason, type RewriteRules } from '../reference/rewrite.js';
import type { Container, Pod } from './admission-types.js';
import { MIRROR_POD_ANNOTATION, OPT_IN_LABEL, OPT_OUT_VALUE, ORIGINAL_IMAGES_ANNOTATION } from './labels.js';
import { PodEdit, type ContainerField, type PatchOperation } from './pod-edit.js';

export type { ContainerField };
const ALL_FIELDS: readonly ContainerField[] = ['initContainers', 'containers', 'ephemeralContainers'];

/** Why an image was not even offered to the rewrite. Bounded: labels a metric. */
export const SKIP_REASONS = ['unchanged-on-update', 'no-pull-secret', 'mirror-unreachable', 'opted-out', 'mirror-pod'] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];
export type ImageReason = RewriteReason | SkipReason;

export interface MutationContext {
  operation: 'CREATE' | 'UPDATE';
  /** `ephemeralcontainers` for `kubectl debug`; undefined for the pod itself. */
  subResource: string | undefined;
  oldPod: Pod | undefined;
  rules: RewriteRules;
  /** Secret added to rewritten pods; undefined when pull secret injection is off. */
  pullSecretName: string | undefined;
  /** False while the mirror probe fails and the configuration says to leave images alone. */
  rewriteAllowed: boolean;
}

export interface ImageDecision {
  field: ContainerField;
  container: string;
  input: string;
  output: string;
  changed: boolean;
  reason: ImageReason;
  detail?: string;
}

export interface MutationResult {
  /** The mutated pod; objects the mutation did not change are shared with the input. */
  pod: Pod;
  /** The JSON Patch from the input to `pod`. */
  patch: PatchOperation[];
  decisions: ImageDecision[];
  warnings: string[];
}

/** Warnings longer than this are cut: the API server shows them to kubectl users one per line. */
const WARNING_MAX = 120;
const WARN_REASONS: ReadonlySet<ImageReason> = new Set([
  'invalid',
  'unroutable-host',
  'unsupported-digest',
  'name-too-long',
  'no-pull-secret',
  'mirror-unreachable',
]);

function warning(text: string): string {
  return text.length <= WARNING_MAX ? text : `${text.slice(0, WARNING_MAX - 1)}…`;
}

function containersOf(pod: Pod | undefined, field: ContainerField): Container[] {
  const list = pod?.spec?.[field];
  return Array.isArray(list) ? list : [];
}

/**
 * Which container lists the operation may change. The API server only lets an UPDATE of the pod change
 * container images, only lets the ephemeralcontainers subresource add ephemeral containers, and forbids
 * changing existing ephemeral containers.
 */
function editableFields(ctx: MutationContext): readonly ContainerField[] {
  if (ctx.operation === 'CREATE') return ALL_FIELDS;
  if (ctx.subResource === 'ephemeralcontainers') return ['ephemeralContainers'];
  if (ctx.subResource === undefined || ctx.subResource === '') return ['initContainers', 'containers'];
  return [];
}

/** On UPDATE only images the request sets now are candidates; rewriting an unchanged image would restart a running container. */
function isNewOnUpdate(ctx: MutationContext, field: ContainerField, c: Container): boolean {
  if (ctx.operation === 'CREATE') return true;
  const old = containersOf(ctx.oldPod, field).find((o) => o.name === c.name);
  if (field === 'ephemeralContainers') return old === undefined;
  return old === undefined || old.image !== c.image;
}

/**
 * Written out key by key, not spread from a shared base: V8 (Node 20) gives every object made by a spread followed by
 * new keys a hidden class of its own, kept in the old generation, which keeps a review's young objects alive until a
 * full GC (see `withKey` in pod-edit.ts).
 */
function decision(field: ContainerField, container: string, input: string, output: string, changed: boolean, reason: ImageReason, detail?: string): ImageDecision {
  return detail ? { field, container, input, output, changed, reason, detail } : { field, container, input, output, changed, reason };
}

function hasPullSecret(pod: Pod, name: string): boolean {
  return (pod.spec?.imagePullSecrets ?? []).some((s) => s?.name === name);
}

function readOriginals(pod: Pod): Record<string, string> {
  const text = pod.metadata?.annotations?.[ORIGINAL_IMAGES_ANNOTATION];
  if (!text) return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      return Object.fromEntries(Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string'));
    }
  } catch {
    // Someone wrote a bad value: it is replaced below.
  }
  return {};
}

/**
 * The pod mutation: pure (`pod` is not modified). It decides, container by container, what image the pod should
 * carry, adds the pull secret on CREATE and records the original images, building the mutated pod copy-on-write
 * and the JSON Patch that turns the input into it.
 */
export function mutatePod(pod: Pod, ctx: MutationContext): MutationResult {
  const edit = new PodEdit(pod);
  const decisions: ImageDecision[] = [];
  const warnings: string[] = [];
  const done = (): MutationResult => ({ pod: edit.pod, patch: edit.patch, decisions, warnings });

  const podSkip: SkipReason | undefined =
    pod.metadata?.annotations?.[MIRROR_POD_ANNOTATION] !== undefined
      ? 'mirror-pod'
      : pod.metadata?.labels?.[OPT_IN_LABEL] === OPT_OUT_VALUE
        ? 'opted-out'
        : !ctx.rewriteAllowed
          ? 'mirror-unreachable'
          : ctx.operation === 'UPDATE' && ctx.pullSecretName !== undefined && !hasPullSecret(pod, ctx.pullSecretName)
            ? 'no-pull-secret'
            : undefined;

  const fields = editableFields(ctx);
  for (const field of fields) {
    const containers = containersOf(pod, field);
    for (let i = 0; i < containers.length; i++) {
      const c = containers[i]!;
      if (typeof c.image !== 'string' || c.image === '') continue;
      if (!isNewOnUpdate(ctx, field, c)) {
        decisions.push(decision(field, c.name, c.image, c.image, false, 'unchanged-on-update'));
        continue;
      }
      if (podSkip) {
        decisions.push(decision(field, c.name, c.image, c.image, false, podSkip));
        continue;
      }
      const r = rewriteImage(c.image, ctx.rules);
      decisions.push(decision(field, c.name, c.image, r.output, r.changed, r.reason, r.detail));
      if (r.changed) edit.setImage(field, i, r.output);
      else if (WARN_REASONS.has(r.reason)) warnings.push(warning(`mirrorgate: container ${c.name}: image "${c.image}" left unchanged: ${r.detail ?? r.reason}`));
    }
  }

  const rewritten = decisions.filter((d) => d.changed);
  const offered = decisions.filter((d) => d.reason === podSkip);
  if (podSkip === 'no-pull-secret' && offered.length > 0) {
    warnings.push(warning(`mirrorgate: images left unchanged: the pod has no imagePullSecret ${ctx.pullSecretName} for the mirror`));
  } else if (podSkip === 'mirror-unreachable' && offered.length > 0) {
    warnings.push(warning('mirrorgate: the mirror is unreachable; images left unchanged'));
  }
  if (rewritten.length === 0) return done();

  // imagePullSecrets cannot change on UPDATE (the API server refuses it), so only CREATE adds it.
  if (ctx.operation === 'CREATE' && ctx.pullSecretName !== undefined && !hasPullSecret(pod, ctx.pullSecretName)) {
    edit.addPullSecret(ctx.pullSecretName);
  }
  // The ephemeralcontainers subresource drops metadata changes, so the annotation is only written for the pod itself.
  if (ctx.subResource !== 'ephemeralcontainers') {
    const originals = readOriginals(pod);
    for (const d of rewritten) originals[d.container] = d.input;
    edit.setAnnotation(ORIGINAL_IMAGES_ANNOTATION, JSON.stringify(originals));
  }
  return done();
}
