import type { NextFunction, Request, Response } from 'express';
import { MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { MirrorLimitsConfig } from '../../config/schema.js';
import { sendError } from './error-envelope.js';

/** Requests that carry content: blob uploads (any size, streamed) and manifest pushes (capped by their route). */
const PUSH_PATH = /^\/v2\/.+\/(?:blobs\/uploads(?:\/[^/]*)?|manifests\/[^/]+)$/;

/** Least a push body must bring per `uploadStallTimeout`. */
const STALL_BYTES = 64 * 1024;

/**
 * Refuses requests no registry client sends, before any route sees them: bodies on anything but a push,
 * larger than the limit or of unknown length (answered 413 and the connection closed, so the body is never
 * read), and query strings that are too long or have too many parameters. Bounds the time a body may take:
 * `requestTimeout` in all for a small one, and for a push (any size: a layer may be gigabytes) at least 64 KiB
 * every `uploadStallTimeout`; a body that falls behind has its connection destroyed.
 */
export function requestGuard(
  limits: Pick<MirrorLimitsConfig, 'maxBodySize' | 'maxQueryLength' | 'maxQueryParams' | 'requestTimeout' | 'uploadStallTimeout'>,
  logger: Logger,
) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const length = req.headers['content-length'];
    const chunked = req.headers['transfer-encoding'] !== undefined;
    const push = (req.method === 'PUT' || req.method === 'PATCH' || req.method === 'POST') && PUSH_PATH.test(req.path);
    if (!push && (chunked || (length !== undefined && Number(length) > limits.maxBodySize))) {
      res.setHeader('connection', 'close');
      sendError(res, new MirrorgateError('UNSUPPORTED', 'request body not accepted here', { status: 413 }), logger);
      return;
    }
    const q = req.originalUrl.indexOf('?');
    if (q >= 0) {
      const query = req.originalUrl.slice(q + 1);
      if (query.length > limits.maxQueryLength || query.split('&').length > limits.maxQueryParams) {
        sendError(res, new MirrorgateError('UNSUPPORTED', 'query string too long', { status: 400 }), logger);
        return;
      }
    }
    if (chunked || Number(length ?? 0) > 0) watchBody(req, res, push ? { stallMs: limits.uploadStallTimeout } : { totalMs: limits.requestTimeout }, logger);
    next();
  };
}

/** Destroys the connection of a request whose body is not all there in `totalMs`, or stalls for `stallMs`. */
function watchBody(req: Request, res: Response, limit: { totalMs: number } | { stallMs: number }, logger: Logger): void {
  const socket = req.socket;
  let seen = socket.bytesRead;
  const cut = (why: string): void => {
    logger.warn({ method: req.method, path: req.path.slice(0, 200), why }, 'request body too slow: connection closed');
    socket.destroy();
  };
  const timer =
    'totalMs' in limit
      ? limit.totalMs > 0
        ? setTimeout(() => cut(`not received within ${limit.totalMs} ms`), limit.totalMs)
        : undefined
      : limit.stallMs > 0
        ? setInterval(() => {
            if (socket.bytesRead - seen < STALL_BYTES) cut(`less than ${STALL_BYTES} bytes in ${limit.stallMs} ms`);
            seen = socket.bytesRead;
          }, limit.stallMs)
        : undefined;
  if (!timer) return;
  timer.unref();
  // Not when the answer is sent: a body still trickling in would hold the connection after it. Both listeners
  // go once either fires: a keep-alive connection carries many requests, and each would leave its closure.
  const done = (): void => {
    clearTimeout(timer);
    req.off('end', done);
    socket.off('close', done);
  };
  req.once('end', done);
  socket.once('close', done);
}

/**
 * Last in the chain: errors express raises itself (a path that does not decode, for one) become the spec
 * envelope instead of express's HTML page. Anything else goes through `sendError` as a bug (500, logged).
 */
export function envelopeErrors(logger: Logger) {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction): void => {
    const status = (err as { status?: unknown; statusCode?: unknown } | null)?.status ?? (err as { statusCode?: unknown } | null)?.statusCode;
    if (!(err instanceof MirrorgateError) && typeof status === 'number' && status >= 400 && status < 500) {
      const message = err instanceof URIError ? 'malformed percent-encoding in the path' : 'malformed request';
      sendError(res, new MirrorgateError(err instanceof URIError ? 'NAME_INVALID' : 'UNSUPPORTED', message, { status: err instanceof URIError ? 400 : status }), logger);
      return;
    }
    sendError(res, err, logger);
  };
}
