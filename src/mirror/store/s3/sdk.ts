import { createRequire } from 'node:module';
import type * as S3 from '@aws-sdk/client-s3';
import type * as Presigner from '@aws-sdk/s3-request-presigner';

const require = createRequire(import.meta.url);
let s3: typeof S3 | undefined;
let presigner: typeof Presigner | undefined;

/**
 * The S3 SDK, loaded on first use (its CommonJS build, synchronously): a mirror on the filesystem, each of its
 * workers and the webhook never load it, which keeps about 20 MB out of every such process.
 */
export function s3Sdk(): typeof S3 {
  return (s3 ??= require('@aws-sdk/client-s3') as typeof S3);
}

/** The presigner, loaded on first use, as `s3Sdk`. */
export function s3Presigner(): typeof Presigner {
  return (presigner ??= require('@aws-sdk/s3-request-presigner') as typeof Presigner);
}
