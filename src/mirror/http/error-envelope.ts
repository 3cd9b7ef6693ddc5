import type { Response } from 'express';
import { ERROR_CODES, MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';

/** Spec error codes clients know; mirror-specific codes are sent as the nearest of these. */
const WIRE_CODE: Partial<Record<keyof typeof ERROR_CODES, string>> = {
  UPSTREAM_UNKNOWN: 'NAME_UNKNOWN',
  UPSTREAM_UNAVAILABLE: 'UNAVAILABLE',
  UPSTREAM_INVALID_CONTENT: 'UNAVAILABLE',
  STORAGE_FULL: 'UNAVAILABLE',
};

/**
 * The one place that writes the mirror's error envelope: `{"errors":[{"code","message","detail"}]}` with
 * the code's status. Anything that is not a MirrorgateError is a bug: 500 UNKNOWN, logged with its stack.
 * When the headers are already out (an error mid-stream), the connection is cut so the client sees a
 * short transfer instead of a body that looks complete.
 */
export function sendError(res: Response, err: unknown, logger: Logger): void {
  const e =
    err instanceof MirrorgateError ? err : new MirrorgateError('UNKNOWN', 'internal error', { cause: err });
  if (!(err instanceof MirrorgateError)) logger.error({ err, reqId: res.locals.reqId as unknown }, 'unexpected error');
  res.locals.errorCode = e.code;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({
    errors: [{ code: WIRE_CODE[e.code] ?? e.code, message: e.message, detail: e.detail ?? null }],
  });
  res.status(e.status);
  for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  if (e.status === 401 && !res.getHeader('www-authenticate')) res.setHeader('www-authenticate', 'Basic realm="mirrorgate"');
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
