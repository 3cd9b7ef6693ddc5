import { existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentOnDisk, tagsOnDisk } from '../../helpers/cache-disk.js';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { pushImage, sha256, type PushedImage } from '../../helpers/images.js';
import { startMirror } from '../../helpers/mirror.js';
import { skopeoCopy } from '../../helpers/skopeo.js';
import { Cleanup, makeTempDir, type TempDir } from '../../helpers/tmp.js';
import { runCliToEnd } from '../../helpers/cli-process.js';
import { StorageLayout } from '../../../src/mirror/store/fs/layout.js';

const cleanup = new Cleanup();
let hub: HubFront;
const images: PushedImage[] = [];
let release: PushedImage;

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  for (const tag of ['dev-1', 'dev-2', 'dev-3']) images.push(await pushImage(registry.url, 'team/app', tag, { layers: [20_000], format: 'oci', seed: tag }));
  release = await pushImage(registry.url, 'team/app', 'v1.2.0', { layers: [20_000], format: 'oci', seed: 'release' });
  hub = cleanup.add(await startHubFront({ target: registry.url }));
}, 120_000);

afterAll(() => cleanup.run());

const gc = (args: string[]) => runCliToEnd(['gc', ...args]);

const HOUR = 3_600_000;

/** A cache filled by real pulls (dev-1, dev-2, dev-3, v1.2.0 in that order), then the mirror stopped. */
async function filledCache(): Promise<TempDir> {
  const storage = cleanup.add(await makeTempDir('mirrorgate-cache-'));
  const mirror = await startMirror({ upstreams: { 'docker.io': hub.url }, storage, config: { mirror: { storage: { path: storage.path }, cache: { gcInterval: 0 } } } });
  try {
    for (const img of [...images, release]) {
      const out = cleanup.add(await makeTempDir('mirrorgate-pull-'));
      await skopeoCopy(`docker://${mirror.host}/team/app:${img.tag}`, `dir:${out.path}`, { throwOnError: true });
      await new Promise((r) => setTimeout(r, 20)); // distinct access times
    }
  } finally {
    await mirror.stop();
  }
  return storage;
}

/** Writes a file as a crash would have left it, last written `ageMs` ago. */
function plant(file: string, bytes: Buffer, ageMs: number): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, bytes);
  const t = new Date(Date.now() - ageMs);
  utimesSync(file, t, t);
  return file;
}

describe('mirrorgate gc', () => {
  it('after a crash: lists, then removes, stale temp files and unreferenced content; images stay whole', async () => {
    const storage = await filledCache();
    const root = storage.path;
    const layout = new StorageLayout(root);
    const oldPart = plant(path.join(layout.tmpDir, 'blobs-1700000000000-aaaaaaaaaaaaaaaa.part'), Buffer.alloc(5000, 1), 2 * HOUR);
    const freshPart = plant(path.join(layout.tmpDir, 'blobs-1700000000001-bbbbbbbbbbbbbbbb.part'), Buffer.alloc(100, 2), 0);
    const orphanBytes = Buffer.from('a blob committed just before the crash, its manifest never was');
    const orphan = sha256(orphanBytes);
    const orphanFile = plant(layout.blobPath(orphan), orphanBytes, 2 * HOUR);
    const youngBytes = Buffer.from('a blob fetched a moment ago, its manifest may be on its way');
    const young = sha256(youngBytes);
    const youngFile = plant(layout.blobPath(young), youngBytes, 0);

    const dry = await gc(['--storage', root, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('dry run: nothing is deleted');
    expect(dry.stdout).toContain(`would remove unreferenced blob ${orphan}`);
    expect(dry.stdout).toContain('would remove stale temp file blobs-1700000000000-aaaaaaaaaaaaaaaa (blobs');
    expect(dry.stdout).not.toContain('bbbbbbbbbbbbbbbb');
    expect(dry.stdout).not.toContain(young);
    for (const f of [oldPart, freshPart, orphanFile, youngFile]) expect(existsSync(f)).toBe(true);

    const run = await gc(['--storage', root]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`removed unreferenced blob ${orphan}`);
    expect(existsSync(oldPart)).toBe(false);
    expect(existsSync(orphanFile)).toBe(false);
    expect(existsSync(freshPart)).toBe(true);
    expect(existsSync(youngFile)).toBe(true);
    const blobs = contentOnDisk(root, 'blobs');
    for (const img of [...images, release]) for (const b of [img.config, ...img.layers]) expect(blobs.has(b.digest)).toBe(true);
    expect(tagsOnDisk(root, { upstream: 'docker.io', path: 'team/app' }).size).toBe(4);

    // The mirror starts on the collected directory and serves the images without going upstream for blobs.
    const mirror = cleanup.add(await startMirror({ upstreams: { 'docker.io': hub.url }, storage, config: { mirror: { storage: { path: root }, cache: { gcInterval: 0 } } } }));
    hub.reset();
    const out = cleanup.add(await makeTempDir('mirrorgate-pull-'));
    await skopeoCopy(`docker://${mirror.host}/team/app@${release.digest}`, `dir:${out.path}`, { throwOnError: true });
    expect(hub.count({ kind: 'blob' })).toBe(0);
  }, 120_000);

  it('applies retention from the config file: keeps releases and the most recent dev tag; dry run first', async () => {
    const storage = await filledCache();
    const root = storage.path;
    const config = path.join(root, '..', `${path.basename(root)}.yaml`);
    writeFileSync(config, ['mirror:', '  retention:', '    - repository: "team/*"', '      keepLast: 1', '      keepTags: "^v\\\\d+\\\\.\\\\d+\\\\.\\\\d+$"', ''].join('\n'));
    cleanup.add(() => rmSync(config, { force: true }));

    const dry = await gc(['--config', config, '--storage', root, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/would remove tag docker\.io\/team\/app:dev-1: retention: not among the 1 most recent tags; frees \d/);
    expect(dry.stdout).toMatch(/would remove tag docker\.io\/team\/app:dev-2: retention/);
    expect(dry.stdout).not.toMatch(/app:dev-3|app:v1\.2\.0/);
    expect(tagsOnDisk(root, { upstream: 'docker.io', path: 'team/app' }).size).toBe(4);

    const json = await gc(['--config', config, '--storage', root, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout) as { remove: { name: string; reason: string }[]; content: { digest: string }[] };
    expect(report.remove.map((r) => r.name).sort()).toEqual(['docker.io/team/app:dev-1', 'docker.io/team/app:dev-2']);
    expect([...tagsOnDisk(root, { upstream: 'docker.io', path: 'team/app' }).keys()].sort()).toEqual(['dev-3', 'v1.2.0']);
    const blobs = contentOnDisk(root, 'blobs');
    for (const img of images.slice(0, 2)) for (const b of img.layers) expect(blobs.has(b.digest)).toBe(false);
    for (const img of [images[2]!, release]) for (const b of [img.config, ...img.layers]) expect(blobs.has(b.digest)).toBe(true);
    const index = JSON.parse(readFileSync(path.join(root, 'state', 'access.json'), 'utf8')) as { entries: Record<string, number> };
    expect(Object.keys(index.entries).some((k) => k.includes('dev-1'))).toBe(false);
  }, 120_000);

  it('refuses to collect a directory a running mirror holds (a dry run is allowed)', async () => {
    const storage = cleanup.add(await makeTempDir('mirrorgate-cache-'));
    cleanup.add(await startMirror({ upstreams: { 'docker.io': hub.url }, storage, config: { mirror: { storage: { path: storage.path }, cache: { gcInterval: 0 } } } }));
    const run = await gc(['--storage', storage.path]);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/in use by a running mirror \(pid \d+/);
    const dry = await gc(['--storage', storage.path, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stderr).toContain('is using this directory');
  }, 60_000);
});
