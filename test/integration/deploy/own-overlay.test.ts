import { execFileSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { validateObjects } from '../../helpers/deploy/k8s-schema.js';
import { all, find, MANIFESTS, render, ROOT, type K8sObject } from '../../helpers/deploy/kustomize.js';
import { makeTempDir, type TempDir } from '../../helpers/tmp.js';

// `any`: rendered manifests are parsed YAML trees; each field is checked by the assertion that reads it.
type Tree = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const IMAGE = 'harbor.internal.example/platform/mirrorgate';
const MIRROR = 'mirror.internal.example';
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** The shell block docs/deploy.md marks with `<!-- own-overlay -->`. */
function recipe(): string {
  const doc = readFileSync(path.join(ROOT, 'docs/deploy.md'), 'utf8');
  const m = /<!-- own-overlay -->\n```sh\n([\s\S]*?)\n```/.exec(doc);
  if (!m) throw new Error('docs/deploy.md: no ```sh block after <!-- own-overlay -->');
  return m[1]!;
}

let dir: TempDir;
let objects: K8sObject[];

beforeAll(async () => {
  dir = await makeTempDir('mirrorgate-own-overlay-');
  cpSync(MANIFESTS, path.join(dir.path, 'manifests'), { recursive: true });
  execFileSync('bash', ['-euo', 'pipefail', '-c', recipe()], { cwd: dir.path, env: { ...process.env, IMAGE, MIRROR }, stdio: 'pipe' });
  objects = render('overlays/mine', path.join(dir.path, 'manifests'));
}, 60_000);

afterAll(async () => {
  await dir.cleanup();
});

describe("docs/deploy.md's own-overlay recipe", () => {
  it('renders objects that pass schema validation', async () => {
    expect(await validateObjects(objects)).toEqual([]);
  });

  it('sets the mirror host everywhere it appears, and the image', () => {
    const file = path.join(dir.path, 'config.yaml');
    writeFileSync(file, (find(objects, 'ConfigMap').data as Record<string, string>)['config.yaml']!);
    expect(loadConfig({ file, env: {} }).webhook.mirrorHost).toBe(MIRROR);
    const ingress = find(objects, 'Ingress').spec as Tree;
    expect(ingress.rules.map((r: Tree) => r.host)).toEqual([MIRROR]);
    expect(ingress.tls[0].hosts).toEqual([MIRROR]);
    expect((find(objects, 'Certificate', 'mirrorgate-mirror-tls').spec as Tree).dnsNames).toEqual([MIRROR]);
    const workloads = [...all(objects, 'Deployment'), ...all(objects, 'DaemonSet')];
    const images = workloads.flatMap((w) => {
      const spec = (w.spec as Tree).template.spec as Tree;
      return [...((spec.initContainers as Tree[] | undefined) ?? []), ...(spec.containers as Tree[])].map((c) => c.image as string);
    });
    expect(new Set(images)).toEqual(new Set([`${IMAGE}:${VERSION}`]));
    expect(readFileSync(path.join(dir.path, 'manifests/overlays/mine/config.yaml'), 'utf8')).not.toContain('registry.example.com');
  });
});
