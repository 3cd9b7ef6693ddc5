import express, { type Express, type RequestHandler } from 'express';
import { MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { MirrorMetrics } from '../metrics.js';
import type { StatusService } from '../status/status-report.js';
import { registerStatusPage } from '../ui/routes.js';
import { sendError } from './error-envelope.js';
import { envelopeErrors } from './guard.js';
import { PREFETCH_PATH } from './prefetch-route.js';
import { requestLog } from './request-log.js';
import { createRoutes, type MirrorRouteDeps } from './routes.js';

export interface MirrorAppDeps extends MirrorRouteDeps {
  logger: Logger;
  metrics: MirrorMetrics;
  /** False while starting or shutting down: /readyz answers 503. */
  isReady: () => boolean;
  /** True once shutdown began: responses ask clients to close their connection. */
  isStopping: () => boolean;
  /** Hostile-input checks run before everything else (body, query bounds). */
  guard?: RequestHandler | undefined;
  /** Authentication for everything under /v2 (the base probe included) and the status page under /ui. Health and metrics stay open. */
  auth?: RequestHandler | undefined;
  /** The status page's domain; the page is served at /ui when given. */
  status?: StatusService | undefined;
  /** `POST /v2/_mirrorgate/prefetch`, when prefetch is on (behind `auth`, like the registry API). */
  prefetch?: RequestHandler | undefined;
  /** The /metrics text, when it is not this process's registry alone (the mirror's workers: all of them summed). */
  metricsText?: (() => Promise<string>) | undefined;
}

/** Assembles the mirror's express app: request log, the read API, the status page, health and metrics. */
export function createMirrorApp(deps: MirrorAppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  app.use(requestLog(deps.logger, deps.metrics));
  if (deps.guard) app.use(deps.guard);
  app.use((_req, res, next) => {
    if (deps.isStopping()) res.setHeader('connection', 'close');
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.status(200).json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    const ready = deps.isReady();
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready' });
  });
  app.get('/metrics', (_req, res) => {
    (deps.metricsText ?? (() => deps.metrics.registry.metrics()))().then(
      (text) => res.status(200).type(deps.metrics.registry.contentType).send(text),
      (err: unknown) => sendError(res, err, deps.logger),
    );
  });

  if (deps.auth) {
    const auth = deps.auth;
    // Not `app.use('/v2', auth)`: a mounted middleware makes express rewrite the URL on every request.
    // Case-insensitive, as express routes are.
    app.use((req, res, next) => (/^\/(?:v2|ui)(?:\/|$)/i.test(req.path) ? auth(req, res, next) : next()));
  }
  if (deps.status) registerStatusPage(app, { status: deps.status, access: deps.access, logger: deps.logger });
  const routes = createRoutes(deps);
  if (deps.prefetch) app.post(PREFETCH_PATH, deps.prefetch);
  app.get('/v2/', routes.base);
  app.get('/v2/_catalog', routes.catalog);
  app.all('/v2/*path', routes.v2);
  app.use((req, res) => {
    sendError(res, new MirrorgateError('UNSUPPORTED', `no such endpoint: ${req.method} ${req.path.slice(0, 200)}`, { status: 404 }), deps.logger);
  });
  app.use(envelopeErrors(deps.logger));
  return app;
}
