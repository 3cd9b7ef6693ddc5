import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { ErrorCode } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { Admitter } from './admit.js';
import type { WebhookMetrics } from './metrics.js';
import { readBody } from './read-body.js';
import { bareError, decodeReview, rejected, uidOf } from './review.js';

export interface WebhookAppDeps {
  admitter: Admitter;
  metrics: WebhookMetrics;
  logger: Logger;
  maxBodySize: number;
  ready: () => boolean;
}

/** An answer of the edge: its status and the JSON it sends. */
interface Answer {
  status: number;
  body: unknown;
}

const JSON_TYPE_RE = /^application\/json\s*(?:;|$)/i;

function bare(code: ErrorCode, message: string): Answer {
  const e = bareError(code, message);
  return { status: e.status, body: e.body };
}

/**
 * The answer to a review's body: decoding, the Content-Type check and the admitter's answer. Every answer to a
 * readable review is an AdmissionReview carrying the request's uid.
 */
function answerReview(deps: WebhookAppDeps, raw: Buffer | undefined, contentType: string): Answer {
  const text = raw ? raw.toString('utf8') : '';
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    deps.metrics.reviews.inc({ operation: 'other', outcome: 'rejected' });
    return bare('REVIEW_MALFORMED', 'the body is not JSON');
  }
  if (!JSON_TYPE_RE.test(contentType)) {
    deps.metrics.reviews.inc({ operation: 'other', outcome: 'rejected' });
    const uid = uidOf(body);
    const message = `Content-Type must be application/json, not ${JSON.stringify(contentType)}`;
    if (uid === undefined) return bare('CONTENT_TYPE_INVALID', message);
    return { status: 200, body: rejected(uid, 'CONTENT_TYPE_INVALID', message) };
  }
  const decoded = decodeReview(body);
  if (!decoded.ok) {
    deps.metrics.reviews.inc({ operation: 'other', outcome: 'rejected' });
    deps.logger.warn({ uid: decoded.uid, code: decoded.code, reason: decoded.message }, 'malformed AdmissionReview');
    if (decoded.uid === undefined) return bare(decoded.code, decoded.message);
    return { status: 200, body: rejected(decoded.uid, decoded.code, decoded.message) };
  }
  return { status: 200, body: deps.admitter.admit(decoded.request) };
}

/** Body read failures: too large, aborted, bad encoding. The body was not read, so there is no uid to echo. */
function answerBodyError(deps: WebhookAppDeps, err: unknown): Answer {
  const e = err as { type?: string; message?: string };
  deps.metrics.reviews.inc({ operation: 'other', outcome: 'rejected' });
  if (e.type === 'entity.too.large') return bare('REVIEW_TOO_LARGE', `the body is larger than ${deps.maxBodySize} bytes`);
  if (e.type === 'encoding.unsupported') return bare('CONTENT_TYPE_INVALID', e.message ?? 'unsupported encoding');
  deps.logger.warn({ err }, 'request failed');
  return bare('REVIEW_MALFORMED', e.message ?? 'bad request');
}

/** Writes an answer with the headers express's `res.json` writes (X-Powered-By and ETag are off). */
function send(res: ServerResponse, answer: Answer): void {
  const text = JSON.stringify(answer.body);
  res.writeHead(answer.status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** The path the API server calls, with the `?timeout=` it appends. */
function isMutateUrl(url: string | undefined): boolean {
  return url === '/mutate' || (url !== undefined && url.startsWith('/mutate?'));
}

function hasNoContentEncoding(req: IncomingMessage): boolean {
  const encoding = req.headers['content-encoding'];
  return encoding === undefined || encoding.toLowerCase() === 'identity';
}

/**
 * The HTTP edge: body size cap, Content-Type check, decoding; it calls the admitter and writes what it returns.
 * The API server's request (`POST /mutate`, a plain JSON body) is answered without express: its router, body
 * parser and response helpers cost more than the review itself. Every other request (compressed bodies, other
 * spellings of the path, /healthz, /readyz, /metrics) goes through express, with the same answers.
 */
export function createWebhookHandler(deps: WebhookAppDeps): RequestListener {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.post('/mutate', express.raw({ type: () => true, limit: deps.maxBodySize }), (req: Request, res: Response) => {
    const raw: unknown = req.body;
    const answer = answerReview(deps, Buffer.isBuffer(raw) ? raw : undefined, req.headers['content-type'] ?? '');
    res.status(answer.status).json(answer.body);
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

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const answer = answerBodyError(deps, err);
    res.status(answer.status).json(answer.body);
  });

  return (req, res) => {
    if (req.method === 'POST' && isMutateUrl(req.url) && hasNoContentEncoding(req)) {
      readBody(req, deps.maxBodySize).then(
        (raw) => send(res, answerReview(deps, raw, req.headers['content-type'] ?? '')),
        (err: unknown) => send(res, answerBodyError(deps, err)),
      );
      return;
    }
    app(req, res);
  };
}
