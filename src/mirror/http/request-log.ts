import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../../common/logger.js';
import type { MirrorMetrics } from '../metrics.js';

/**
 * One log line per request (with a request id, echoed in `X-Request-Id`) and the request metrics.
 * Logged on `close` so aborted transfers are counted too. Headers are not logged at all: no
 * Authorization can leak through here.
 */
export function requestLog(logger: Logger, metrics: MirrorMetrics) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const started = process.hrtime.bigint();
    const incoming = req.headers['x-request-id'];
    const reqId = typeof incoming === 'string' && /^[\w.-]{1,64}$/.test(incoming) ? incoming : randomUUID();
    res.locals.reqId = reqId;
    res.setHeader('x-request-id', reqId);
    res.on('close', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const kind = typeof res.locals.kind === 'string' ? res.locals.kind : req.path === '/v2/' ? 'base' : 'other';
      const status = res.writableFinished ? res.statusCode : 0;
      metrics.requests.inc({ method: req.method, kind, status: String(status) });
      metrics.requestDuration.observe({ kind }, seconds);
      logger.info(
        {
          reqId,
          method: req.method,
          path: req.originalUrl.slice(0, 512),
          status,
          aborted: !res.writableFinished,
          ms: Math.round(seconds * 1000),
          error: res.locals.errorCode as unknown,
          // Gone (null) when the connection closed under a request whose body was never read.
          remote: req.socket?.remoteAddress,
        },
        'request',
      );
    });
    next();
  };
}
