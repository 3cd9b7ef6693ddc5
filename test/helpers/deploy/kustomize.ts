import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

/** Renders kustomizations with `kubectl kustomize` (scripts/setup.sh installs kubectl when a machine lacks it). */

export const ROOT = path.resolve(import.meta.dirname, '../../..');
export const MANIFESTS = path.join(ROOT, 'manifests');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

function findKubectl(): string {
  const candidates = [process.env.KUBECTL, 'kubectl', path.join(ROOT, '.tools/kubectl/kubectl')].filter((c): c is string => !!c);
  for (const c of candidates) {
    if (c.includes('/') && !existsSync(c)) continue;
    const r = spawnSync(c, ['version', '--client'], { encoding: 'utf8' });
    if (r.status === 0) return c;
  }
  throw new Error('kubectl not found (tried $KUBECTL, PATH, .tools/kubectl/kubectl): run `bash scripts/setup.sh`, which installs it');
}

let kubectl: string | undefined;

/** The objects `kubectl kustomize <dir>` renders, `dir` relative to `root` (manifests/ unless told). */
export function render(dir: string, root = MANIFESTS): K8sObject[] {
  kubectl ??= findKubectl();
  const text = execFileSync(kubectl, ['kustomize', path.join(root, dir)], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  return parseAllDocuments(text).map((d) => {
    if (d.errors.length > 0) throw new Error(`${dir}: ${d.errors[0]!.message}`);
    return d.toJS() as K8sObject;
  });
}

export function find(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0]!;
}

export function all(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

/** Every overlay directory under manifests/overlays. */
export function overlays(): string[] {
  return readdirSync(path.join(MANIFESTS, 'overlays'), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => `overlays/${d.name}`)
    .sort();
}
