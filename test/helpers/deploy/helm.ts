import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT, type K8sObject } from './kustomize.js';

/** Runs `helm` on charts/mirrorgate (scripts/setup.sh installs helm when a machine lacks it). */

export const CHART = path.join(ROOT, 'charts/mirrorgate');

function findHelm(): string {
  const candidates = [process.env.HELM, 'helm', path.join(ROOT, '.tools/helm/helm')].filter((c): c is string => !!c);
  for (const c of candidates) {
    if (c.includes('/') && !existsSync(c)) continue;
    const r = spawnSync(c, ['version', '--short'], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.startsWith('v3.')) return c;
  }
  throw new Error('helm 3 not found (tried $HELM, PATH, .tools/helm/helm): run `bash scripts/setup.sh`, which installs it');
}

let helmBin: string | undefined;

export interface HelmResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs helm with `values` in a values file (`-f`), with a throwaway HOME so no user configuration leaks in. */
export function helm(args: string[], values: object = {}, chart = CHART): HelmResult {
  helmBin ??= findHelm();
  const dir = mkdtempSync(path.join(tmpdir(), 'mirrorgate-helm-'));
  try {
    const file = path.join(dir, 'values.yaml');
    // JSON, which YAML 1.1 (Helm's) and 1.2 read alike: `yes` stays a string.
    writeFileSync(file, JSON.stringify(values));
    const env = { PATH: process.env.PATH ?? '', HOME: dir, HELM_CACHE_HOME: dir, HELM_CONFIG_HOME: dir, HELM_DATA_HOME: dir };
    const r = spawnSync(helmBin, [...args, chart, '-f', file], { encoding: 'utf8', env, maxBuffer: 16 * 1024 * 1024 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The objects `helm template` renders for `values` in `namespace` (release name `mirrorgate`); throws with helm's error. */
export function helmTemplate(values: object = {}, namespace = 'mirrorgate', chart = CHART): K8sObject[] {
  const r = helm(['template', 'mirrorgate', '--namespace', namespace], values, chart);
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr.trim()}`);
  return parseAllDocuments(r.stdout)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`helm template output: ${d.errors[0]!.message}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

/**
 * NOTES.txt as `helm install` prints it for `values`. `helm template` does not render NOTES.txt (and `helm install
 * --dry-run` needs a cluster), so a copy of the chart renders the same file through `tpl` into a ConfigMap.
 */
export function helmNotes(values: object = {}, namespace = 'mirrorgate'): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'mirrorgate-notes-'));
  try {
    const chart = path.join(dir, 'mirrorgate');
    cpSync(CHART, chart, { recursive: true });
    cpSync(path.join(chart, 'templates/NOTES.txt'), path.join(chart, 'files/NOTES.txt'));
    writeFileSync(path.join(chart, 'templates/notes-as-configmap.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: notes }\ndata:\n  notes: {{ tpl (.Files.Get "files/NOTES.txt") . | toJson }}\n');
    const cm = helmTemplate(values, namespace, chart).find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'notes');
    return (cm!.data as Record<string, string>).notes!;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
