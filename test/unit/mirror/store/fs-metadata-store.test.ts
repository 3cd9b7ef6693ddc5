import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/common/clock.js';
import { FsStorage } from '../../../../src/mirror/store/fs/fs-storage.js';
import type { MetadataStore } from '../../../../src/mirror/store/metadata-store.js';
import type { RepositoryRef, TagRecord } from '../../../../src/mirror/store/types.js';
import { describeMetadataStoreContract, sha256 } from '../../../helpers/storage-contract.js';
import { makeTempDir, useCleanup } from '../../../helpers/tmp.js';

describeMetadataStoreContract('FsMetadataStore', async () => {
  const dir = await makeTempDir('mg-metadata-');
  const clock = new ManualClock();
  const storage = new FsStorage(path.join(dir.path, 'storage'), clock);
  await storage.prepare();
  return {
    store: storage.metadata,
    cleanup: () => dir.cleanup(),
    elapse: async (ms) => clock.advance(ms),
  };
});

describe('FsMetadataStore on disk', () => {
  const cleanup = useCleanup();
  const repo: RepositoryRef = { upstream: 'docker.io', path: 'library/nginx' };
  const record: TagRecord = { digest: sha256(Buffer.from('m')), mediaType: 'application/vnd.oci.image.index.v1+json', size: 1, checkedAt: 1 };

  async function open(): Promise<{ base: string; root: string; reopen(): MetadataStore; store: MetadataStore }> {
    const dir = cleanup.add(await makeTempDir('mg-metadata-'));
    const root = path.join(dir.path, 'storage');
    const storage = new FsStorage(root, new ManualClock());
    await storage.prepare();
    return { base: dir.path, root, store: storage.metadata, reopen: () => new FsStorage(root, new ManualClock()).metadata };
  }

  it('a new store on the same directory sees what the last one wrote', async () => {
    const { store, reopen } = await open();
    const d = sha256(Buffer.from('layer'));
    await store.putTag(repo, 'latest', record);
    await store.link(repo, 'blob', d);
    await store.putReferrer(repo, record.digest, { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d, size: 3 });
    await store.putUpload({ id: 'u1', repo, writeId: 'w', offset: 7, startedAt: 1, updatedAt: 2 });
    await store.saveAccessTimes(new Map([['k', 42]]));

    const again = reopen();
    expect(await again.getTag(repo, 'latest')).toEqual(record);
    expect(await again.isLinked(repo, 'blob', d)).toBe(true);
    expect(await again.listReferrers(repo, record.digest)).toHaveLength(1);
    expect(await again.getUpload('u1')).toMatchObject({ offset: 7 });
    expect(await again.loadAccessTimes()).toEqual(new Map([['k', 42]]));
    expect(await again.listRepositories()).toEqual([repo]);

    // What one instance deletes, the other no longer reads from disk.
    expect(await again.deleteTag(repo, 'latest')).toBe(true);
    expect(await again.unlink(repo, 'blob', d)).toBe(true);
    const third = reopen();
    expect(await third.getTag(repo, 'latest')).toBeUndefined();
    expect(await third.isLinked(repo, 'blob', d)).toBe(false);
  });

  it('hostile names write nothing outside the storage root', async () => {
    const { base, store } = await open();
    const hostile: RepositoryRef[] = [
      { upstream: 'docker.io', path: '../../../x' },
      { upstream: '..', path: 'x' },
    ];
    for (const r of hostile) {
      await store.putTag(r, 'latest', record).catch(() => undefined);
      await store.link(r, 'blob', record.digest).catch(() => undefined);
    }
    await store.putTag(repo, '../../../../../../escape', record).catch(() => undefined);
    await store.putUpload({ id: '../../escape', repo, writeId: 'w', offset: 0, startedAt: 1, updatedAt: 1 }).catch(() => undefined);
    expect(await readdir(base)).toEqual(['storage']);
    expect((await readdir(path.join(base, 'storage'))).sort()).not.toContain('escape.json');
  });
});
