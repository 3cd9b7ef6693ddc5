import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll } from 'vitest';
import { S3ContentStore } from '../../../src/mirror/store/s3/s3-content-store.js';
import { S3Keys, type ContentKind } from '../../../src/mirror/store/s3/s3-keys.js';
import { S3Objects } from '../../../src/mirror/store/s3/s3-objects.js';
import { startCephRgw, type CephRgw } from '../../helpers/ceph-rgw.js';
import { createBucket, emptyPrefix, rgwClient } from '../../helpers/s3-bucket.js';
import { describeContentStoreContract } from '../../helpers/storage-contract.js';

const BUCKET = 'contract';
const MiB = 1024 * 1024;
let rgw: CephRgw;
let s3: S3Client;
let stores = 0;

beforeAll(async () => {
  rgw = await startCephRgw();
  s3 = rgwClient(rgw);
  await createBucket(s3, BUCKET);
}, 60_000);

afterAll(async () => {
  s3?.destroy();
  await rgw?.stop();
});

/** A store under a prefix of its own, emptied after the test. */
function storeHarness(kind: ContentKind) {
  return async () => {
    const prefix = `t${++stores}/`;
    const store = new S3ContentStore(new S3Objects(s3, BUCKET), new S3Keys({ bucket: BUCKET, prefix }), kind, { partSize: 8 * MiB });
    return { store, cleanup: () => emptyPrefix(s3, BUCKET, prefix) };
  };
}

describeContentStoreContract('S3ContentStore on Ceph RGW (blobs)', storeHarness('blobs'));
describeContentStoreContract('S3ContentStore on Ceph RGW (manifests)', storeHarness('manifests'));
