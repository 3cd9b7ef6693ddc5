import { readFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { rootCertificates } from 'node:tls';
import type { S3Client } from '@aws-sdk/client-s3';
import type { S3StorageConfig } from '../../../config/schema.js';
import { readSecret } from '../../upstream/credentials.js';
import { s3Sdk } from './sdk.js';

/** Keys read from files or variables are read again this often, so rotated secrets are picked up. */
const CREDENTIALS_REFRESH_MS = 5 * 60_000;

/** What a request looks like to a build-step middleware, as far as this file needs. */
interface BuildArgs {
  request: { headers?: Record<string, string>; body?: unknown };
}

/**
 * The S3 client the configuration describes. Retries are the SDK's standard mode (exponential backoff with
 * jitter over 5xx, throttling and `503 SlowDown`); checksums are only those a request requires, since Ceph
 * RGW before Squid and older MinIO refuse the SDK's default trailing checksums (each PUT carries a
 * Content-MD5 instead, see S3ContentWriter).
 */
export function createS3Client(config: S3StorageConfig, env: NodeJS.ProcessEnv = process.env): S3Client {
  const agentOptions = { keepAlive: true, maxSockets: config.maxConnections };
  const ca = config.caFile === undefined ? undefined : [...rootCertificates, readFileSync(config.caFile, 'utf8')];
  const { accessKeyId, secretAccessKey } = config;
  const client = new (s3Sdk().S3Client)({
    region: config.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    ...(config.endpoint === undefined ? {} : { endpoint: config.endpoint }),
    forcePathStyle: config.forcePathStyle,
    ...(accessKeyId && secretAccessKey
      ? {
          credentials: async () => ({
            accessKeyId: readSecret(accessKeyId, env),
            secretAccessKey: readSecret(secretAccessKey, env),
            expiration: new Date(Date.now() + CREDENTIALS_REFRESH_MS),
          }),
        }
      : {}),
    retryMode: 'standard',
    maxAttempts: config.maxAttempts,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      connectionTimeout: config.timeouts.connect,
      requestTimeout: config.timeouts.idle,
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent({ ...agentOptions, ...(ca ? { ca } : {}) }),
    },
  });
  // Bodies are parts of up to 64 MiB: signing them would hash each in one blocking call. They go unsigned,
  // guarded by the signed Content-MD5 header every PUT of ours carries.
  client.middlewareStack.add(
    (next) => (args) => {
      const { request } = args as unknown as BuildArgs;
      if (request.headers && Buffer.isBuffer(request.body) && request.headers['content-md5']) request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', name: 'mirrorgateUnsignedPayload' },
  );
  return client;
}
