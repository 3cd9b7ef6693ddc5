import { MirrorgateError } from '../../../common/errors.js';

/** What the SDK's errors carry: the S3 error code as `name`, the HTTP status in `$metadata`. */
interface S3ErrorShape {
  name?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

export function s3ErrorCode(err: unknown): string | undefined {
  const e = err as S3ErrorShape | undefined;
  return e?.Code ?? e?.name;
}

export function s3Status(err: unknown): number | undefined {
  return (err as S3ErrorShape | undefined)?.$metadata?.httpStatusCode;
}

/** The key (or the upload) is not there: `NoSuchKey` on GET, a bare 404 on HEAD. */
export function isNotFound(err: unknown): boolean {
  const code = s3ErrorCode(err);
  return code === 'NoSuchKey' || code === 'NotFound' || code === 'NoSuchUpload' || (s3Status(err) === 404 && code !== 'NoSuchBucket');
}

/**
 * The SDK's error without its raw response (sockets, buffers): what is worth keeping as a cause in logs.
 */
function leanCause(err: unknown): Error {
  if (!(err instanceof Error)) return new Error(String(err));
  const lean = new Error(err.message || s3ErrorCode(err) || 'object storage error');
  lean.name = err.name;
  return Object.assign(lean, { code: s3ErrorCode(err), status: s3Status(err) });
}

/**
 * An object-storage failure as the mirror reports it: UNAVAILABLE (503, clients retry), naming what failed.
 * Our own errors pass through unchanged.
 */
export function storageError(err: unknown, what: string): Error {
  if (err instanceof MirrorgateError) return err;
  const code = s3ErrorCode(err);
  const status = s3Status(err);
  const detail = [code, status === undefined ? undefined : `HTTP ${status}`].filter(Boolean).join(', ');
  return new MirrorgateError('UNAVAILABLE', `object storage: ${what} failed: ${(err as Error)?.message ?? String(err)}${detail ? ` (${detail})` : ''}`, { cause: leanCause(err) });
}

/**
 * The start-up check's answer for an error of the bucket probe: one clear message for each of the usual
 * mistakes (the bucket missing, keys refused, the clock off), CONFIG_INVALID for all of them.
 */
export function startupError(err: unknown, where: string): MirrorgateError {
  const code = s3ErrorCode(err);
  const status = s3Status(err);
  const message = ((): string => {
    switch (code) {
      case 'NoSuchBucket':
        return `bucket does not exist: create it, or fix mirror.storage.s3.bucket`;
      case 'InvalidAccessKeyId':
        return 'the access key is not known to the object store: check mirror.storage.s3.accessKeyId (or AWS_ACCESS_KEY_ID)';
      case 'SignatureDoesNotMatch':
        return 'the secret key does not match the access key: check mirror.storage.s3.secretAccessKey (or AWS_SECRET_ACCESS_KEY)';
      case 'RequestTimeTooSkewed':
      case 'RequestExpired':
        return "this machine's clock is too far from the object store's (more than 15 minutes): fix the clock (NTP)";
      case 'AccessDenied':
        return 'access denied: the credentials need list, read, write and delete on the bucket (s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject, s3:AbortMultipartUpload, s3:ListBucketMultipartUploads)';
      default:
        if (status === 404) return 'bucket does not exist: create it, or fix mirror.storage.s3.bucket';
        if (status === 403) return 'the object store refused the credentials';
        return `cannot reach the object store: ${(err as Error)?.message ?? String(err)}${code ? ` (${code})` : ''}`;
    }
  })();
  return new MirrorgateError('CONFIG_INVALID', `object storage ${where}: ${message}`, { cause: leanCause(err), detail: { s3Code: code, status } });
}
