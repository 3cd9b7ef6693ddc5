import { AbortMultipartUploadCommand, CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command, DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { s3StorageSchema, type S3StorageConfig } from '../../src/config/schema.js';
import { createS3Client } from '../../src/mirror/store/s3/s3-client.js';
import type { CephRgw } from './ceph-rgw.js';

/** The configuration of a bucket on the test gateway, as a mirror's `mirror.storage.s3` would give it. */
export function rgwConfig(rgw: CephRgw, bucket: string, extra: Record<string, unknown> = {}): S3StorageConfig {
  return s3StorageSchema.parse({
    bucket,
    endpoint: rgw.endpoint,
    region: rgw.region,
    forcePathStyle: true,
    accessKeyId: { value: rgw.accessKeyId },
    secretAccessKey: { value: rgw.secretAccessKey },
    ...extra,
  });
}

/** A client through the product's own factory (retries, timeouts, checksum settings). */
export function rgwClient(rgw: CephRgw, extra: Record<string, unknown> = {}): S3Client {
  return createS3Client(rgwConfig(rgw, 'unused', extra), {});
}

export async function createBucket(s3: S3Client, bucket: string): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
}

/** Every key under `prefix`, in key order. */
export async function listKeys(s3: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
    for (const o of res.Contents ?? []) keys.push(o.Key!);
    token = res.IsTruncated ? res.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/** Multipart uploads under `prefix` (key and upload id). */
export async function listUploads(s3: S3Client, bucket: string, prefix = ''): Promise<{ key: string; uploadId: string }[]> {
  const res = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  return (res.Uploads ?? []).map((u) => ({ key: u.Key!, uploadId: u.UploadId! }));
}

/** Removes everything under `prefix`: objects and multipart uploads. */
export async function emptyPrefix(s3: S3Client, bucket: string, prefix: string): Promise<void> {
  for (const u of await listUploads(s3, bucket, prefix)) await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId }));
  const keys = await listKeys(s3, bucket, prefix);
  for (let i = 0; i < keys.length; i += 16) await Promise.all(keys.slice(i, i + 16).map((Key) => s3.send(new DeleteObjectCommand({ Bucket: bucket, Key }))));
}
