import type { Container, Pod, PodSpec } from './admission-types.js';

export type ContainerField = 'containers' | 'initContainers' | 'ephemeralContainers';

/** One RFC 6902 operation, as the API server applies it. */
export interface PatchOperation {
  op: 'add' | 'replace';
  path: string;
  value: unknown;
}

/** RFC 6901: `~` and `/` in a key are escaped in a JSON Pointer. */
function pointerToken(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A shallow copy of `obj` with `key` set to `value`, keys defined as a spread defines them (an own `__proto__` stays
 * a key). Not `{ ...obj, [key]: value }` when `key` is new: V8 (Node 20) then gives every such copy a hidden class
 * of its own, which lives in the old generation and keeps the review's young objects alive past every scavenge
 * until a full GC (measured: about 1 KB a review promoted, scavenges 3 to 4x the floor's; docs/benchmarks.md).
 */
function withKey<T extends object>(obj: T, key: string, value: unknown): T {
  if (Object.hasOwn(obj, key)) return { ...obj, [key]: value };
  return Object.fromEntries([...Object.entries(obj), [key, value]]) as T;
}

/**
 * A copy-on-write edit of a pod that records its JSON Patch as it goes: the input is never modified, only the
 * objects on a changed path are copied (a review's pod is kilobytes of managedFields and status the webhook never
 * touches), and each change is written as the operation a diff of the two pods (fast-json-patch's `compare`)
 * gives for it. The property tests check both against a diff.
 */
export class PodEdit {
  readonly pod: Pod;
  readonly patch: PatchOperation[] = [];
  private spec: PodSpec | undefined;
  private readonly lists = new Map<ContainerField, Container[]>();

  constructor(private readonly original: Pod) {
    this.pod = { ...original };
  }

  /** Sets the image of the container at `index` of `field` (an existing container). */
  setImage(field: ContainerField, index: number, image: string): void {
    const list = this.ownList(field);
    const container = list[index]!;
    if (container.image === image) return;
    list[index] = { ...container, image };
    this.patch.push({ op: 'replace', path: `/spec/${field}/${index}/image`, value: image });
  }

  /** Appends `{ name }` to `spec.imagePullSecrets` (creating the list when there is none). */
  addPullSecret(name: string): void {
    const spec = this.ownSpec();
    const current = spec.imagePullSecrets;
    const entry = { name };
    if (Array.isArray(current)) {
      spec.imagePullSecrets = [...current, entry];
      this.patch.push({ op: 'add', path: `/spec/imagePullSecrets/${current.length}`, value: entry });
    } else {
      // The spec is this edit's own copy; the container lists it holds are shared with the new one.
      this.pod.spec = this.spec = withKey(spec, 'imagePullSecrets', [entry]);
      this.patch.push({ op: current === undefined ? 'add' : 'replace', path: '/spec/imagePullSecrets', value: [entry] });
    }
  }

  /** Sets one annotation, creating `metadata` and `metadata.annotations` when missing. */
  setAnnotation(key: string, value: string): void {
    const metadata = this.original.metadata;
    if (metadata === undefined || metadata === null) {
      const created = { annotations: { [key]: value } };
      this.pod.metadata = created;
      this.patch.push({ op: metadata === undefined ? 'add' : 'replace', path: '/metadata', value: created });
      return;
    }
    // A JSON pod's metadata is an object; anything else is not a pod this webhook can annotate (it fails open).
    if (!isPlainObject(metadata)) throw new TypeError('pod metadata is not an object');
    const current: unknown = metadata.annotations;
    if (isPlainObject(current)) {
      const had = Object.hasOwn(current, key);
      if (had && current[key] === value) return;
      this.pod.metadata = withKey(metadata, 'annotations', withKey(current as Record<string, string>, key, value));
      this.patch.push({ op: had ? 'replace' : 'add', path: `/metadata/annotations/${pointerToken(key)}`, value });
      return;
    }
    // Missing, null or not an object: the whole map is written (what the spread of the old value gives).
    const annotations = withKey((current ?? {}) as Record<string, string>, key, value);
    this.pod.metadata = withKey(metadata, 'annotations', annotations);
    this.patch.push({ op: current === undefined ? 'add' : 'replace', path: '/metadata/annotations', value: annotations });
  }

  private ownSpec(): PodSpec {
    if (this.spec === undefined) this.pod.spec = this.spec = { ...this.original.spec };
    return this.spec;
  }

  private ownList(field: ContainerField): Container[] {
    let list = this.lists.get(field);
    if (list === undefined) {
      const spec = this.ownSpec();
      list = [...(spec[field] ?? [])];
      spec[field] = list;
      this.lists.set(field, list);
    }
    return list;
  }
}
