import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/common/clock.js';
import { S3MetadataStore } from '../../../src/mirror/store/s3/s3-metadata-store.js';
import { S3Objects } from '../../../src/mirror/store/s3/s3-objects.js';
import type { RepositoryRef, TagRecord } from '../../../src/mirror/store/types.js';
import { startCephRgw, type CephRgw } from '../../helpers/ceph-rgw.js';
import { createBucket, emptyPrefix, listKeys, rgwClient } from '../../helpers/s3-bucket.js';
import { describeMetadataStoreContract, sha256 } from '../../helpers/storage-contract.js';
import { useCleanup } from '../../helpers/tmp.js';

/** Metadata as objects in the bucket, beside the content: what every replica sharing the bucket reads. */
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

describe('metadata shared by replicas', () => {
  const cleanup = useCleanup();
  const hosted: RepositoryRef = { upstream: 'hosted', path: 'team/app' };
  const proxied: RepositoryRef = { upstream: 'docker.io', path: 'library/nginx' };
  const record: TagRecord = { digest: sha256(Buffer.from('m')), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1, checkedAt: 1 };

  it('what one replica writes, another reads at once: tags, links, upload sessions, the catalog', async () => {
    const prefix = `r${++prefixes}/`;
    cleanup.add(() => emptyPrefix(s3, BUCKET, prefix));
    const [a, b] = [s3Store(prefix), s3Store(prefix)];
    await a.putTag(hosted, 'v1', record);
    await a.link(hosted, 'blob', record.digest);
    await a.putUpload({ id: 'u1', repo: hosted, writeId: 'w1', offset: 5, startedAt: 1, updatedAt: 2 });
    await a.putTag(proxied, 'latest', record);

    expect(await b.getTag(hosted, 'v1')).toEqual(record);
    expect((await b.listTags(hosted)).map((t) => t.tag)).toEqual(['v1']);
    expect(await b.isLinked(hosted, 'blob', record.digest)).toBe(true);
    expect((await b.getUpload('u1'))?.offset).toBe(5);
    expect(await b.getTag(proxied, 'latest')).toEqual(record);
    expect(await b.listRepositories()).toEqual([proxied, hosted]);

    // Nothing is remembered in memory: a change by the other replica is seen at once.
    expect(await b.deleteTag(hosted, 'v1')).toBe(true);
    expect(await a.getTag(hosted, 'v1')).toBeUndefined();
    expect(await listKeys(s3, BUCKET, `${prefix}meta/repositories/hosted/team/app/`)).toEqual([
      `${prefix}meta/repositories/hosted/team/app/_blobs/sha256/${record.digest.slice(7)}`,
    ]);
  });
});
