import type { Request, Response } from 'express';
import { fail, MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { MirrorMetrics } from '../metrics.js';
import type { Repository } from '../repository/repository.js';
import type { RepositoryRouter } from '../repository/router.js';
import type { AccessRules } from '../auth/access.js';
import type { Principal } from '../auth/authenticator.js';
import { createPushRoutes } from './push-routes.js';
import { parseRangeHeader } from '../store/range.js';
import { negotiateDescriptor, negotiateManifest } from '../service/negotiate.js';
import { nextLink, paginate, parsePageRequest } from '../service/pagination.js';
import { sendError } from './error-envelope.js';
import { streamBody } from './stream-body.js';
import { parseAccept, parseV2Path, singleQuery } from './parse.js';

/**
 * Set by the front server (`proxy_set_header X-Mirrorgate-Accel on`): only then is a warm blob answered with
 * `X-Accel-Redirect`, so a client that reaches the mirror directly still gets the bytes. A client sending it
 * itself gets an empty answer, which harms nobody but itself; the front overwrites it.
 */
const ACCEL_FRONT_HEADER = 'x-mirrorgate-accel';

export interface MirrorRouteDeps {
  router: RepositoryRouter;
  access: AccessRules;
  logger: Logger;
  metrics: MirrorMetrics;
}

const API_VERSION = 'registry/2.0';

/**
 * The HTTP edge of the read API. Each handler parses the request, calls the domain (stores, services) and
 * maps the answer to headers and a body; errors all go through `sendError`.
 */
export function createRoutes(deps: MirrorRouteDeps) {
  const { logger } = deps;
  const write = createPushRoutes(deps);

  async function base(_req: Request, res: Response): Promise<void> {
    res.setHeader('docker-distribution-api-version', API_VERSION);
    res.setHeader('content-type', 'application/json');
    res.setHeader('content-length', '2');
    res.status(200).end(_req.method === 'HEAD' ? undefined : '{}');
  }

  async function catalog(req: Request, res: Response): Promise<void> {
    const page = parsePageRequest({ n: singleQuery(req.query.n, 'n'), last: singleQuery(req.query.last, 'last') }, false);
    const principal = res.locals.principal as Principal | undefined;
    const names = await deps.router.catalog((t) => deps.access.allows(principal, t, 'pull'));
    const { items, next } = paginate(names, page);
    const link = nextLink('/v2/_catalog', next);
    if (link) res.setHeader('link', link);
    sendJson(req, res, { repositories: items });
  }

  async function v2(req: Request, res: Response): Promise<void> {
    res.setHeader('docker-distribution-api-version', API_VERSION);
    const rawPath = req.originalUrl.split('?')[0]!;
    const route = parseV2Path(rawPath, req.method);
    if (!route) throw new MirrorgateError('UNSUPPORTED', `no such endpoint: ${req.method} ${rawPath.slice(0, 200)}`, { status: 404 });
    res.locals.kind = route.kind;
    const repo = deps.router.resolve(route.name, singleQuery(req.query.ns, 'ns'));
    if (route.kind === 'upload' || (req.method !== 'GET' && req.method !== 'HEAD')) return write(req, res, repo, route);
    deps.access.check(res.locals.principal as Principal | undefined, repo, 'pull');
    switch (route.kind) {
      case 'manifest':
        return manifest(req, res, repo, route.reference);
      case 'blob':
        return blob(req, res, repo, route.digest);
      case 'tags':
        return tags(req, res, repo, route.name);
      case 'referrers':
        return referrers(req, res, repo, route.digest);
    }
  }

  async function manifest(req: Request, res: Response, repo: Repository, reference: string): Promise<void> {
    const accept = parseAccept(req.headers.accept);
    if (req.method === 'HEAD') {
      const d = await negotiateDescriptor(repo.manifests, repo.ref, reference, accept);
      res.status(200).set({ 'content-type': d.mediaType, 'content-length': String(d.size), 'docker-content-digest': d.digest, etag: `"${d.digest}"` });
      res.end();
      return;
    }
    const m = await negotiateManifest(repo.manifests, repo.ref, reference, accept);
    res.status(200).set({ 'content-type': m.mediaType, 'content-length': String(m.bytes.length), 'docker-content-digest': m.digest, etag: `"${m.digest}"` });
    deps.metrics.bytesServed.inc({ kind: 'manifest' }, m.bytes.length);
    res.end(m.bytes);
  }

  async function blob(req: Request, res: Response, repo: Repository, digest: string): Promise<void> {
    if (req.method === 'HEAD') {
      const info = await repo.blobs.stat(repo.ref, digest);
      if (!info) throw fail('BLOB_UNKNOWN', `blob ${digest} unknown`, { digest });
      res.status(200).set({ 'content-type': 'application/octet-stream', 'content-length': String(info.size), 'docker-content-digest': digest, 'accept-ranges': 'bytes', etag: `"${digest}"` });
      res.end();
      return;
    }
    const range = parseRangeHeader(req.headers.range);
    // HEADs stay here: a presigned URL is signed for a GET, and a HEAD needs no file sent.
    const location = await repo.blobs.locate(repo.ref, digest);
    if (location && 'url' in location) {
      res.status(307).set({ location: location.url, 'docker-content-digest': digest, 'content-length': '0' });
      res.end();
      return;
    }
    if (location && 'accelPath' in location && req.headers[ACCEL_FRONT_HEADER] === 'on') {
      // The front server sends the file (its own Content-Length, Range and 206); these headers go with it.
      res.status(200).set({ 'x-accel-redirect': location.accelPath, 'content-type': 'application/octet-stream', 'docker-content-digest': digest, etag: `"${digest}"`, 'content-length': '0' });
      res.end();
      return;
    }
    const content = await repo.blobs.open(repo.ref, digest, range);
    if (!content) throw fail('BLOB_UNKNOWN', `blob ${digest} unknown`, { digest });
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'docker-content-digest': digest,
      'accept-ranges': 'bytes',
      etag: `"${digest}"`,
    };
    if (content.range) {
      headers['content-range'] = `bytes ${content.range.start}-${content.range.end}/${content.info.size}`;
      headers['content-length'] = String(content.range.end - content.range.start + 1);
      res.status(206);
    } else {
      if (content.info.size >= 0) headers['content-length'] = String(content.info.size);
      res.status(200);
    }
    res.set(headers);
    let sent = 0;
    content.body.on('data', (chunk: Buffer) => {
      sent += chunk.length;
    });
    try {
      await streamBody(content.body, res);
    } finally {
      deps.metrics.bytesServed.inc({ kind: 'blob' }, sent);
    }
  }

  async function tags(req: Request, res: Response, repo: Repository, name: string): Promise<void> {
    const page = parsePageRequest({ n: singleQuery(req.query.n, 'n'), last: singleQuery(req.query.last, 'last') }, true);
    const result = await repo.listTags(page);
    const ns = singleQuery(req.query.ns, 'ns');
    const link = nextLink(`/v2/${name}/tags/list`, result.next);
    if (link) res.setHeader('link', ns ? link.replace('?', `?ns=${encodeURIComponent(ns)}&`) : link);
    sendJson(req, res, { name, tags: result.tags });
  }

  async function referrers(req: Request, res: Response, repo: Repository, digest: string): Promise<void> {
    const artifactType = singleQuery(req.query.artifactType, 'artifactType');
    if (artifactType !== undefined && (artifactType.length > 255 || !/^[\w.+/-]+$/.test(artifactType))) {
      throw fail('UNSUPPORTED', 'invalid artifactType filter');
    }
    const answer = await repo.listReferrers(digest, artifactType);
    if (answer.filtersApplied) res.setHeader('oci-filters-applied', 'artifactType');
    res.status(200).set({ 'content-type': 'application/vnd.oci.image.index.v1+json', 'content-length': String(answer.body.length) });
    res.end(req.method === 'HEAD' ? undefined : answer.body);
  }

  /** Wraps an async handler: any throw becomes the spec's error envelope. */
  const wrap =
    (fn: (req: Request, res: Response) => Promise<void>) =>
    (req: Request, res: Response): void => {
      fn(req, res).catch((err: unknown) => {
        if (isClientGone(err, res)) return;
        sendError(res, err, logger);
      });
    };

  return { base: wrap(base), catalog: wrap(catalog), v2: wrap(v2) };
}

function sendJson(req: Request, res: Response, doc: unknown): void {
  const body = Buffer.from(JSON.stringify(doc));
  res.status(200).set({ 'content-type': 'application/json; charset=utf-8', 'content-length': String(body.length) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** The client left: a response it stopped reading, or a request body it stopped sending (`aborted`). */
function isClientGone(err: unknown, res: Response): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return (code === 'ERR_STREAM_PREMATURE_CLOSE' && res.destroyed) || (code === 'ECONNRESET' && res.req.destroyed && !res.req.complete);
}
