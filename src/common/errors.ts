/**
 * The one error registry. Every error the product raises carries a stable string `code`;
 * callers match on `code`, never on the class. Mirror codes are the OCI Distribution spec's
 * (plus the few distribution adds); webhook codes describe admission failures.
 */
export interface ErrorSpec {
  /** HTTP status the mirror answers with. */
  status: number;
  /** Short human message, as in the spec's table. */
  message: string;
}

export const ERROR_CODES = {
  // OCI Distribution spec error codes.
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 404, message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  // Codes distribution adds to the spec's list; clients know them.
  TAG_INVALID: { status: 400, message: 'manifest tag did not match URI' },
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'invalid number of results requested' },
  RANGE_INVALID: { status: 416, message: 'requested range not satisfiable' },
  UNAVAILABLE: { status: 503, message: 'service unavailable' },
  UNKNOWN: { status: 500, message: 'unknown error' },
  // Mirror-specific conditions, each mapped onto a spec status.
  UPSTREAM_UNKNOWN: { status: 404, message: 'no configured upstream serves this repository' },
  UPSTREAM_UNAVAILABLE: { status: 502, message: 'upstream registry unavailable' },
  UPSTREAM_INVALID_CONTENT: { status: 502, message: 'upstream sent content that failed verification' },
  STORAGE_FULL: { status: 507, message: 'cache storage is full' },
  STORAGE_LOCKED: { status: 503, message: 'cache storage is in use by another process' },
  // Configuration and command-line errors (exit codes, not HTTP, but registered here too).
  CONFIG_INVALID: { status: 500, message: 'configuration invalid' },
  // Webhook (admission) errors: reported inside an AdmissionReview, never as a bare HTTP error.
  REVIEW_MALFORMED: { status: 400, message: 'malformed AdmissionReview' },
  REVIEW_UNSUPPORTED: { status: 400, message: 'unsupported AdmissionReview' },
  REVIEW_TOO_LARGE: { status: 413, message: 'AdmissionReview body too large' },
  CONTENT_TYPE_INVALID: { status: 415, message: 'content type must be application/json' },
  INTERNAL: { status: 500, message: 'internal error' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class MirrorgateError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: unknown;
  /** Extra response headers the error implies (e.g. Retry-After on 429). */
  readonly headers: Record<string, string>;

  constructor(
    code: ErrorCode,
    message?: string,
    options: { detail?: unknown; cause?: unknown; headers?: Record<string, string>; status?: number } = {},
  ) {
    super(message ?? ERROR_CODES[code].message, { cause: options.cause });
    this.name = 'MirrorgateError';
    this.code = code;
    this.status = options.status ?? ERROR_CODES[code].status;
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }
}

export function isMirrorgateError(err: unknown): err is MirrorgateError {
  return err instanceof MirrorgateError;
}

/** Shorthand used throughout the domain code: `throw fail('BLOB_UNKNOWN', ...)`. */
export function fail(code: ErrorCode, message?: string, detail?: unknown): MirrorgateError {
  return new MirrorgateError(code, message, { detail });
}
