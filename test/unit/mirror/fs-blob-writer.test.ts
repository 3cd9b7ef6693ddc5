import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../../src/mirror/store/fs-blob-store.js';
import { StorageLayout } from '../../../src/mirror/store/layout.js';

const roots: string[] = [];
function store(): { store: FsBlobStore; layout: StorageLayout } {
  const root = mkdtempSync(path.join(tmpdir(), 'mg-blobs-'));
  roots.push(root);
  const layout = new StorageLayout(root);
  return { store: new FsBlobStore(layout), layout };
}
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

const data = Buffer.from('hello, mirror');
const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function write(s: FsBlobStore, bytes: Buffer) {
  const w = await s.writer(digest);
  await new Promise<void>((resolve, reject) => w.stream.end(bytes, (err?: Error | null) => (err ? reject(err) : resolve())));
  return w;
}

describe('FsBlobWriter', () => {
  it('commits verified bytes into place and serves them', async () => {
    const { store: s, layout } = store();
    const w = await write(s, data);
    await expect(w.commit({ digest, size: data.length })).resolves.toEqual({ digest, size: data.length });
    expect(readFileSync(layout.blobPath(digest))).toEqual(data);
    expect(readdirSync(layout.tmpDir)).toEqual([]);
    await w.cancel(); // after commit: a no-op
    expect(existsSync(layout.blobPath(digest))).toBe(true);
    const content = await s.open(undefined, digest, { start: 7, end: 12 });
    const chunks: Buffer[] = [];
    for await (const c of content!.body) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('mirror');
  });

  it('refuses a digest mismatch and leaves nothing behind', async () => {
    const { store: s, layout } = store();
    const w = await write(s, Buffer.from('hello, mirrod'));
    await expect(w.commit({ digest, size: data.length })).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
    expect(existsSync(layout.blobPath(digest))).toBe(false);
    expect(readdirSync(layout.tmpDir)).toEqual([]);
  });

  it('refuses a short write (size mismatch)', async () => {
    const { store: s, layout } = store();
    const w = await write(s, data.subarray(0, 5));
    await expect(w.commit({ digest, size: data.length })).rejects.toMatchObject({ code: 'SIZE_INVALID' });
    expect(existsSync(layout.blobPath(digest))).toBe(false);
    expect(await s.stat(undefined, digest)).toBeUndefined();
  });

  it('cancel is safe to call twice and removes the temp file', async () => {
    const { store: s, layout } = store();
    const w = await s.writer(digest);
    w.stream.write(data);
    await Promise.all([w.cancel(), w.cancel()]);
    await w.cancel();
    expect(readdirSync(layout.tmpDir)).toEqual([]);
    await expect(w.commit({ digest, size: data.length })).rejects.toMatchObject({ code: 'BLOB_UPLOAD_INVALID' });
  });
});
