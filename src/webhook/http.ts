import express, { type NextFunction, type Request, type Response } from 'express';
import type { ErrorCode } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { Admitter } from './admit.js';
import type { WebhookMetrics } from './metrics.js';
import { bareError, decodeReview, rejected, uidOf } from './review.js';

export interface WebhookAppDeps {
  admitter: Admitter;
  metrics: WebhookMetrics;
  logger: Logger;
  maxBodySize: number;
  ready: () => boolean;
}

const JSON_TYPE_RE = /^application\/json\s*(?:;|$)/i;

function sendBare(res: Response, code: ErrorCode, message: string): void {
  const e = bareError(code, message);
  res.status(e.status).json(e.body);
}

/**
 * The HTTP edge: body size cap, Content-Type check, decoding. It calls the admitter and writes what it returns;
 * every answer to a readable review is an AdmissionReview carrying the request's uid.
 */
export function createWebhookApp(deps: WebhookAppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.post('/mutate', express.raw({ type: () => true, limit: deps.maxBodySize }), (req: Request, res: Response) => {
    const raw: unknown = req.body;
    const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : '';
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      deps.metrics.reviews.inc({ operation: 'other', outcome: 'rejected' });
      return sendBare(res, 'REVIEW_MALFORMED', 'the body is not JSON');
    }
    const contentType = req.headers['content-type'] ?? '';
    if (!JSON_TYPE_RE.test(contentType)) {
      deps.metrics.reviews.inc({ operation: 'other', outcome: 'rejected' });
      const uid = uidOf(body);
      const message = `Content-Type must be application/json, not ${JSON.stringify(contentType)}`;
      if (uid === undefined) return sendBare(res, 'CONTENT_TYPE_INVALID', message);
      return res.json(rejected(uid, 'CONTENT_TYPE_INVALID', message));
    }
    const decoded = decodeReview(body);
    if (!decoded.ok) {
      deps.metrics.reviews.inc({ operation: 'other', outcome: 'rejected' });
      deps.logger.warn({ uid: decoded.uid, code: decoded.code, reason: decoded.message }, 'malformed AdmissionReview');
      if (decoded.uid === undefined) return sendBare(res, decoded.code, decoded.message);
      return res.json(rejected(decoded.uid, decoded.code, decoded.message));
    }
    res.json(deps.admitter.admit(decoded.request));
  });

  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok');
  });
  app.get('/readyz', (_req, res) => {
    const ready = deps.ready();
    res.status(ready ? 200 : 503).type('text/plain').send(ready ? 'ok' : 'not ready');
  });
  app.get('/metrics', (_req, res, next) => {
    deps.metrics.registry
      .metrics()
      .then((text) => res.type(deps.metrics.registry.contentType).send(text))
      .catch(next);
  });

  // Body parser failures: too large, aborted, bad encoding. The body was not read, so there is no uid to echo.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const e = err as { type?: string; status?: number; message?: string };
    deps.metrics.reviews.inc({ operation: 'other', outcome: 'rejected' });
    if (e.type === 'entity.too.large') return sendBare(res, 'REVIEW_TOO_LARGE', `the body is larger than ${deps.maxBodySize} bytes`);
    if (e.type === 'encoding.unsupported') return sendBare(res, 'CONTENT_TYPE_INVALID', e.message ?? 'unsupported encoding');
    deps.logger.warn({ err }, 'request failed');
    return sendBare(res, 'REVIEW_MALFORMED', e.message ?? 'bad request');
  });
  return app;
}
