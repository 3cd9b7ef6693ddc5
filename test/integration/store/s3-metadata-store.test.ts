import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/common/clock.js';
import { FsMetadataStore } from '../../../src/mirror/store/fs/fs-metadata-store.js';
import { StorageLayout } from '../../../src/mirror/store/fs/layout.js';
import { S3MetadataStore } from '../../../src/mirror/store/s3/s3-metadata-store.js';
import { S3Objects } from '../../../src/mirror/store/s3/s3-objects.js';
import { SplitMetadataStore } from '../../../src/mirror/store/split-metadata-store.js';
import type { RepositoryRef, TagRecord } from '../../../src/mirror/store/types.js';
import { startCephRgw, type CephRgw } from '../../helpers/ceph-rgw.js';
import { createBucket, emptyPrefix, listKeys, rgwClient } from '../../helpers/s3-bucket.js';
import { describeMetadataStoreContract, sha256 } from '../../helpers/storage-contract.js';
import { makeTempDir, useCleanup } from '../../helpers/tmp.js';

/** Metadata as objects in the bucket (what replicas share), alone and split with a replica's own directory. */
const BUCKET = 'metadata';
let rgw: CephRgw;
let s3: S3Client;
let prefixes = 0;

beforeAll(async () => {
  rgw = await startCephRgw();
  s3 = rgwClient(rgw);
  await createBucket(s3, BUCKET);
}, 60_000);

afterAll(async () => {
  s3?.destroy();
  await rgw?.stop();
});

function s3Store(prefix: string, clock = new ManualClock()): S3MetadataStore {
  return new S3MetadataStore(new S3Objects(s3, BUCKET), prefix, clock);
}

describeMetadataStoreContract('S3MetadataStore on Ceph RGW', async () => {
  const prefix = `c${++prefixes}/`;
  const clock = new ManualClock();
  return { store: s3Store(prefix, clock), cleanup: () => emptyPrefix(s3, BUCKET, prefix), elapse: async (ms) => clock.advance(ms) };
});

// docker.io's records in the bucket, every other upstream's on the filesystem: the contract holds across both.
describeMetadataStoreContract('SplitMetadataStore (S3 and filesystem)', async () => {
  const prefix = `s${++prefixes}/`;
  const clock = new ManualClock();
  const dir = await makeTempDir('mg-split-metadata-');
  const local = new FsMetadataStore(new StorageLayout(path.join(dir.path, 'storage')), clock);
  return {
    store: new SplitMetadataStore(s3Store(prefix, clock), local, (r) => r.upstream === 'docker.io'),
    cleanup: async () => {
      await emptyPrefix(s3, BUCKET, prefix);
      await dir.cleanup();
    },
    elapse: async (ms) => clock.advance(ms),
  };
});

describe('metadata split between replicas', () => {
  const cleanup = useCleanup();
  const hosted: RepositoryRef = { upstream: 'hosted', path: 'team/app' };
  const proxied: RepositoryRef = { upstream: 'docker.io', path: 'library/nginx' };
  const record: TagRecord = { digest: sha256(Buffer.from('m')), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1, checkedAt: 1 };

  async function replica(prefix: string): Promise<SplitMetadataStore> {
    const dir = cleanup.add(await makeTempDir('mg-replica-metadata-'));
    const clock = new ManualClock();
    return new SplitMetadataStore(s3Store(prefix, clock), new FsMetadataStore(new StorageLayout(dir.path), clock), (r) => r.upstream === 'hosted');
  }

  it('hosted records and upload sessions written by one replica are read by another; proxied records stay with their replica', async () => {
    const prefix = `r${++prefixes}/`;
    cleanup.add(() => emptyPrefix(s3, BUCKET, prefix));
    const [a, b] = [await replica(prefix), await replica(prefix)];
    await a.putTag(hosted, 'v1', record);
    await a.link(hosted, 'blob', record.digest);
    await a.putUpload({ id: 'u1', repo: hosted, writeId: 'w1', offset: 5, startedAt: 1, updatedAt: 2 });
    await a.putTag(proxied, 'latest', record);

    expect(await b.getTag(hosted, 'v1')).toEqual(record);
    expect((await b.listTags(hosted)).map((t) => t.tag)).toEqual(['v1']);
    expect(await b.isLinked(hosted, 'blob', record.digest)).toBe(true);
    expect((await b.getUpload('u1'))?.offset).toBe(5);
    expect(await b.getTag(proxied, 'latest')).toBeUndefined();
    expect(await a.listRepositories()).toEqual([proxied, hosted]);
    expect(await b.listRepositories()).toEqual([hosted]);

    // A change by the other replica is seen at once: nothing is remembered in memory.
    expect(await b.deleteTag(hosted, 'v1')).toBe(true);
    expect(await a.getTag(hosted, 'v1')).toBeUndefined();
    expect(await listKeys(s3, BUCKET, `${prefix}meta/repositories/hosted/team/app/`)).toEqual([
      `${prefix}meta/repositories/hosted/team/app/_blobs/sha256/${record.digest.slice(7)}`,
    ]);
  });
});
