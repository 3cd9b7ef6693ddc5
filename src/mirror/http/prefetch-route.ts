import type { Request, Response } from 'express';
import { MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { AccessRules } from '../auth/access.js';
import type { Principal } from '../auth/authenticator.js';
import type { MirrorMetrics } from '../metrics.js';
import { parsePrefetchRequest, PREFETCH_MAX_BODY } from '../prefetch/prefetch-request.js';
import type { Prefetcher, SubmitState } from '../prefetch/prefetcher.js';
import type { Repository } from '../repository/repository.js';
import type { RepositoryRouter } from '../repository/router.js';
import { sendError } from './error-envelope.js';

/** Where the webhook tells the mirror what an admitted pod will pull. `_` never starts a repository name, so it cannot collide with one. */
export const PREFETCH_PATH = '/v2/_mirrorgate/prefetch';

export interface PrefetchRouteDeps {
  router: RepositoryRouter;
  access: AccessRules;
  prefetcher: Prefetcher;
  metrics: MirrorMetrics;
  logger: Logger;
}

const JSON_TYPE_RE = /^application\/json\s*(?:;|$)/i;

/** The images' fates, as answered: a hosted image is already here, nothing to fetch. */
type ImageState = SubmitState | 'hosted';

/**
 * `POST /v2/_mirrorgate/prefetch`: parses the images, routes each and checks the client may pull it (the same rules
 * as a pull), queues the proxied ones and answers 202 at once with what became of each. A request with any bad or
 * forbidden image is refused whole, before anything is queued.
 */
export function prefetchRoute(deps: PrefetchRouteDeps) {
  async function handle(req: Request, res: Response): Promise<void> {
    res.locals.kind = 'prefetch';
    let repos: Array<{ image: string; reference: string; repo: Repository }>;
    try {
      const type = req.headers['content-type'] ?? '';
      if (!JSON_TYPE_RE.test(type)) throw new MirrorgateError('CONTENT_TYPE_INVALID', `Content-Type must be application/json, not ${JSON.stringify(type.slice(0, 100))}`);
      const items = parsePrefetchRequest(await readBody(req));
      repos = items.map((item) => ({ image: item.image, reference: item.reference, repo: deps.router.resolve(item.name) }));
    } catch (err) {
      deps.metrics.prefetchRequests.inc({ result: 'invalid' });
      throw err;
    }
    try {
      for (const { repo } of repos) deps.access.check(res.locals.principal as Principal | undefined, repo, 'pull');
    } catch (err) {
      deps.metrics.prefetchRequests.inc({ result: 'denied' });
      throw err;
    }
    const images = repos.map(({ image, reference, repo }) => {
      let state: ImageState;
      if (repo.kind === 'hosted') {
        state = 'hosted';
        deps.metrics.prefetchImages.inc({ state });
      } else {
        state = deps.prefetcher.submit({ repo: repo.ref, reference });
      }
      return { image, state };
    });
    deps.metrics.prefetchRequests.inc({ result: 'accepted' });
    const body = Buffer.from(JSON.stringify({ images }));
    res.status(202).set({ 'content-type': 'application/json; charset=utf-8', 'content-length': String(body.length) });
    res.end(body);
  }

  return (req: Request, res: Response): void => {
    handle(req, res).catch((err: unknown) => {
      // Refused before its body was read: close the connection rather than read the rest.
      if (!req.complete && !res.headersSent) res.setHeader('connection', 'close');
      sendError(res, err, deps.logger);
    });
  };
}

/** The request body, refused past PREFETCH_MAX_BODY bytes without reading the rest. */
async function readBody(req: Request): Promise<Buffer> {
  const tooLarge = (): MirrorgateError => new MirrorgateError('UNSUPPORTED', `the body is larger than ${PREFETCH_MAX_BODY} bytes`, { status: 413 });
  if (Number(req.headers['content-length'] ?? 0) > PREFETCH_MAX_BODY) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > PREFETCH_MAX_BODY) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
