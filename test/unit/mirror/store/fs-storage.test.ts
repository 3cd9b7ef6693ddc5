import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/common/clock.js';
import { FsStorage } from '../../../../src/mirror/store/fs/fs-storage.js';
import type { StorageOwner } from '../../../../src/mirror/store/storage.js';
import { expectCode, sha256 } from '../../../helpers/storage-contract.js';
import { makeTempDir, useCleanup, type Cleanup } from '../../../helpers/tmp.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const fsStorageModule = pathToFileURL(path.join(projectRoot, 'src/mirror/store/fs/fs-storage.ts')).href;

/**
 * Another process claiming the storage (claims by this process never conflict with each other): prints
 * `claimed`, and releases its claim and exits when its stdin closes.
 */
async function claimInChild(root: string, owner: StorageOwner, cleanup: Cleanup): Promise<ChildProcess> {
  const script = `
    const { FsStorage } = await import(${JSON.stringify(fsStorageModule)});
    const claim = await new FsStorage(process.argv[1], { now: () => Date.now() }).claim(process.argv[2]);
    process.stdout.write('claimed\\n');
    process.stdin.on('end', async () => { await claim.release(); process.exit(0); });
    process.stdin.resume();
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, root, owner], {
    cwd: projectRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  cleanup.add(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const until = Date.now() + 20_000;
  while (!out.includes('claimed')) {
    if (child.exitCode !== null || Date.now() > until) throw new Error(`child did not claim the storage:\n${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return child;
}

describe('FsStorage', () => {
  const cleanup = useCleanup();

  async function storageDir(): Promise<string> {
    return path.join(cleanup.add(await makeTempDir('mg-storage-')).path, 'storage');
  }

  it('prepare creates a missing root, and a second prepare sweeps nothing', async () => {
    const storage = new FsStorage(await storageDir(), new ManualClock());
    expect(await storage.prepare()).toEqual({ swept: 0 });
    expect(await storage.prepare()).toEqual({ swept: 0 });
    expect(storage.description).toBe(storage.layout.root);
  });

  it('prepare sweeps what a crash left, but keeps the writes of upload sessions and committed content', async () => {
    const root = await storageDir();
    const before = new FsStorage(root, new ManualClock());
    await before.prepare();
    const committed = Buffer.from('committed before the crash');
    const cw = await before.blobs.writer(sha256(committed));
    await cw.append([committed]);
    await cw.commit({ digest: sha256(committed), size: committed.length });

    const pushed = Buffer.from('the first part of a push, and the rest');
    const cut = 20;
    const upload = await before.blobs.writer(sha256(pushed));
    await upload.append([pushed.subarray(0, cut)]);
    await before.metadata.putUpload({ id: 'u1', repo: { upstream: 'local', path: 'team/app' }, writeId: upload.id, offset: cut, startedAt: 1, updatedAt: 2 });
    const orphanBlob = await before.blobs.writer(sha256(Buffer.from('orphan')));
    await orphanBlob.append([Buffer.from('orph')]);
    const orphanManifest = await before.manifests.writer(sha256(Buffer.from('{}')));
    await orphanManifest.append([Buffer.from('{')]);
    await writeFile(path.join(before.layout.tmpDir, '1700000000000-abcdef.small'), 'torn');
    // Each store lists only its own writes, though they share one directory.
    expect((await before.blobs.listWrites()).map((w) => w.id).sort()).toEqual([upload.id, orphanBlob.id].sort());
    expect((await before.manifests.listWrites()).map((w) => w.id)).toEqual([orphanManifest.id]);

    // A restart: new objects on the same directory; the writers above are never finished.
    const after = new FsStorage(root, new ManualClock());
    expect(await after.prepare()).toEqual({ swept: 3 });
    expect((await after.blobs.listWrites()).map((w) => w.id)).toEqual([upload.id]);
    expect(await after.manifests.listWrites()).toEqual([]);
    expect(await after.blobs.stat(sha256(committed))).toEqual({ digest: sha256(committed), size: committed.length });

    const resumed = (await after.blobs.resume(upload.id, sha256(pushed)))!;
    expect(resumed.written).toBe(cut);
    await resumed.append([pushed.subarray(cut)]);
    await resumed.commit({ digest: sha256(pushed), size: pushed.length });
    expect(await after.blobs.stat(sha256(pushed))).toEqual({ digest: sha256(pushed), size: pushed.length });
    // The crashed run's writer objects, closed; their files are gone already.
    for (const w of [upload, orphanBlob, orphanManifest]) await w.cancel();
    expect(await after.blobs.stat(sha256(pushed))).toEqual({ digest: sha256(pushed), size: pushed.length });
  });

  it('prepare refuses a root that cannot be used with CONFIG_INVALID', async () => {
    const dir = cleanup.add(await makeTempDir('mg-storage-'));
    const file = path.join(dir.path, 'a-file');
    await writeFile(file, 'not a directory');
    await expectCode(new FsStorage(path.join(file, 'storage'), new ManualClock()).prepare(), 'CONFIG_INVALID');
  });

  it('freeSpace is a positive number of bytes', async () => {
    const storage = new FsStorage(await storageDir(), new ManualClock());
    await storage.prepare();
    const free = await storage.freeSpace();
    expect(typeof free).toBe('number');
    expect(Number.isSafeInteger(free)).toBe(true);
    expect(free).toBeGreaterThan(0);
  });

  it('claim and holder: this process holds it, release frees it', async () => {
    const storage = new FsStorage(await storageDir(), new ManualClock());
    await storage.prepare();
    expect(await storage.holder()).toBeUndefined();
    const claim = await storage.claim('mirror');
    expect(await storage.holder()).toMatchObject({ owner: 'mirror', pid: process.pid, hostname: hostname() });
    expect(typeof (await storage.holder())!.since).toBe('number');
    await claim.heartbeat();
    await claim.release();
    expect(await storage.holder()).toBeUndefined();
    await claim.release();
  });

  it('a running mirror and gc exclude each other; force overrides; a killed holder does not count', async () => {
    const root = await storageDir();
    const storage = new FsStorage(root, new ManualClock());
    await storage.prepare();

    const mirror = await claimInChild(root, 'mirror', cleanup);
    expect(await storage.holder()).toMatchObject({ owner: 'mirror', pid: mirror.pid });
    const locked = await expectCode(storage.claim('gc'), 'STORAGE_LOCKED');
    expect(locked.message).toContain(String(mirror.pid));
    // kill -9: the lock file stays, but its pid is gone.
    mirror.kill('SIGKILL');
    await once(mirror, 'exit');
    expect(await storage.holder()).toBeUndefined();
    const gcClaim = await storage.claim('gc');
    expect(await storage.holder()).toMatchObject({ owner: 'gc', pid: process.pid });
    await gcClaim.release();

    const gc = await claimInChild(root, 'gc', cleanup);
    expect(await storage.holder()).toMatchObject({ owner: 'gc', pid: gc.pid });
    await expectCode(storage.claim('mirror'), 'STORAGE_LOCKED');
    await expectCode(storage.claim('gc'), 'STORAGE_LOCKED');
    const forced = await storage.claim('mirror', { force: true });
    expect(await storage.holder()).toMatchObject({ owner: 'mirror', pid: process.pid });
    // The overridden holder's release must not drop the claim that replaced it.
    gc.stdin!.end();
    await once(gc, 'exit');
    expect(await storage.holder()).toMatchObject({ owner: 'mirror', pid: process.pid });
    await forced.release();

    const gc2 = await claimInChild(root, 'gc', cleanup);
    gc2.stdin!.end();
    expect(await once(gc2, 'exit')).toEqual([0, null]);
    expect(await storage.holder()).toBeUndefined();
  }, 60_000);
});
