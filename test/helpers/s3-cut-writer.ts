/**
 * A process that starts a write to an S3 content store and then stops doing anything, to be killed with
 * SIGKILL mid-write (never cancelled, never committed). Run as
 * `node --import tsx s3-cut-writer.ts '<json>'` with {endpoint, accessKeyId, secretAccessKey, bucket, prefix,
 * partSize, seed, bytes}; prints one line `{"id": ..., "written": ...}` once the bytes were appended.
 */
import { S3ContentStore } from '../../src/mirror/store/s3/s3-content-store.js';
import { S3Keys } from '../../src/mirror/store/s3/s3-keys.js';
import { S3Objects } from '../../src/mirror/store/s3/s3-objects.js';
import { createS3Client } from '../../src/mirror/store/s3/s3-client.js';
import { s3StorageSchema } from '../../src/config/schema.js';
import { generateChunks, generatedDigest } from './images.js';

interface Args {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
  prefix: string;
  partSize: number;
  seed: string;
  bytes: number;
}

const args = JSON.parse(process.argv[2]!) as Args;
const config = s3StorageSchema.parse({
  bucket: args.bucket,
  endpoint: args.endpoint,
  forcePathStyle: true,
  accessKeyId: { value: args.accessKeyId },
  secretAccessKey: { value: args.secretAccessKey },
  partSize: args.partSize,
});
const store = new S3ContentStore(new S3Objects(createS3Client(config, {}), args.bucket), new S3Keys({ bucket: args.bucket, prefix: args.prefix }), 'blobs', { partSize: args.partSize });
const writer = await store.writer(generatedDigest(args.seed, args.bytes * 2));
for (const chunk of generateChunks(args.seed, args.bytes)) await writer.append([chunk]);
process.stdout.write(`${JSON.stringify({ id: writer.id, written: writer.written })}\n`);
setInterval(() => undefined, 60_000);
