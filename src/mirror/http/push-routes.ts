import type { Request, Response } from 'express';
import { MirrorgateError, fail } from '../../common/errors.js';
import { parseDigest } from '../../reference/grammar.js';
import type { AccessRules } from '../auth/access.js';
import type { Principal } from '../auth/authenticator.js';
import { uploadHeaders, type ChunkRange } from '../hosted/uploads.js';
import type { HostedRepository, Repository } from '../repository/repository.js';
import type { RepositoryRouter } from '../repository/router.js';
import { MANIFEST_MAX_BYTES } from '../store/manifest-media.js';
import { isStorageFull } from '../store/storage-full.js';
import type { V2Route } from './parse.js';
import { singleQuery } from './parse.js';

/**
 * The HTTP edge of pushes and deletes (the spec's Push and Content Management sections). Each handler
 * parses, checks access, calls the hosted repository and maps the answer to the spec's status and headers.
 * Proxied repositories refuse every write: pushes with 403 DENIED, deletes with 405 UNSUPPORTED.
 */
export function createPushRoutes(deps: { router: RepositoryRouter; access: AccessRules }) {
  const principalOf = (res: Response): Principal | undefined => res.locals.principal as Principal | undefined;

  function hostedFor(res: Response, repo: Repository, action: 'push' | 'delete'): HostedRepository {
    if (repo.kind === 'proxied') {
      throw action === 'delete'
        ? fail('UNSUPPORTED', `${repo.name} is a proxied repository: deletes are not supported`)
        : fail('DENIED', `${repo.name} is a proxied repository: pushes go to hosted repositories only`);
    }
    deps.access.check(principalOf(res), repo, action);
    return repo;
  }

  async function upload(req: Request, res: Response, repo: Repository, id: string | undefined): Promise<void> {
    const action = req.method === 'DELETE' && id === undefined ? 'delete' : 'push';
    const hosted = hostedFor(res, repo, action);
    const { ref } = hosted;
    if (id === undefined) {
      if (req.method !== 'POST') throw fail('UNSUPPORTED', `${req.method} needs an upload id`);
      const mount = singleQuery(req.query.mount, 'mount');
      const from = singleQuery(req.query.from, 'from');
      if (mount !== undefined && from !== undefined && (await mountBlob(res, hosted, mount, from))) return;
      const digest = singleQuery(req.query.digest, 'digest');
      if (digest !== undefined) {
        if (!parseDigest(digest)) throw fail('DIGEST_INVALID', 'invalid digest parameter');
        await hosted.uploads.single(ref, digest, req);
        return created(res, `/v2/${hosted.name}/blobs/${digest}`, digest);
      }
      const state = await hosted.uploads.start(ref);
      req.resume();
      res.status(202).set({ ...uploadHeaders(ref, state.id, 0), 'content-length': '0' }).end();
      return;
    }
    switch (req.method) {
      case 'GET': {
        const state = await hosted.uploads.status(ref, id);
        res.status(204).set(uploadHeaders(ref, id, state.offset)).end();
        return;
      }
      case 'PATCH': {
        const state = await hosted.uploads.append(ref, id, req, parseContentRange(req.headers['content-range']));
        res.status(202).set({ ...uploadHeaders(ref, id, state.offset), 'content-length': '0' }).end();
        return;
      }
      case 'PUT': {
        const digest = singleQuery(req.query.digest, 'digest');
        if (digest === undefined || !parseDigest(digest)) throw fail('DIGEST_INVALID', 'closing an upload needs a valid digest parameter');
        await hosted.uploads.finish(ref, id, digest, req, parseContentRange(req.headers['content-range']));
        return created(res, `/v2/${hosted.name}/blobs/${digest}`, digest);
      }
      case 'DELETE':
        await hosted.uploads.cancel(ref, id);
        res.status(204).end();
        return;
      default:
        throw fail('UNSUPPORTED', `${req.method} is not an upload method`);
    }
  }

  /** A cross-repository mount: true when done (201), false when the source does not hold the blob (a normal upload follows). */
  async function mountBlob(res: Response, target: HostedRepository, digest: string, from: string): Promise<boolean> {
    // Like distribution: a mount that cannot be done, for whatever reason, is a normal upload (the spec's 202).
    if (!parseDigest(digest)) return false;
    let source: Repository;
    try {
      source = deps.router.resolve(from);
    } catch {
      return false;
    }
    // Only from a repository this client may read, and only content it holds: never a way to reach another's blob.
    if (!deps.access.allows(principalOf(res), source, 'pull')) return false;
    // A proxied source counts when it holds a cached copy: a mount never sends a request upstream.
    const local = target.blobs;
    if (!(await local.holds(source.ref, digest)) || !(await local.statContent(digest))) return false;
    await local.hold(target.ref, digest);
    created(res, `/v2/${target.name}/blobs/${digest}`, digest);
    return true;
  }

  async function manifest(req: Request, res: Response, repo: Repository, reference: string): Promise<void> {
    if (req.method === 'PUT') {
      const hosted = hostedFor(res, repo, 'push');
      const bytes = await readBody(req, MANIFEST_MAX_BYTES);
      const pushed = await hosted.pushes.put(hosted.ref, reference, bytes, req.headers['content-type']);
      if (pushed.subject) res.setHeader('oci-subject', pushed.subject);
      return created(res, `/v2/${hosted.name}/manifests/${pushed.digest}`, pushed.digest);
    }
    if (req.method === 'DELETE') {
      const hosted = hostedFor(res, repo, 'delete');
      if (parseDigest(reference)) await hosted.pushes.deleteManifest(hosted.ref, reference);
      else await hosted.pushes.deleteTag(hosted.ref, reference);
      res.status(202).set('content-length', '0').end();
      return;
    }
    throw fail('UNSUPPORTED', `${req.method} is not a manifest method`);
  }

  async function blob(req: Request, res: Response, repo: Repository, digest: string): Promise<void> {
    if (req.method !== 'DELETE') throw fail('UNSUPPORTED', `${req.method} is not a blob method`);
    const hosted = hostedFor(res, repo, 'delete');
    await hosted.pushes.deleteBlob(hosted.ref, digest);
    res.status(202).set('content-length', '0').end();
  }

  function dispatch(req: Request, res: Response, repo: Repository, route: V2Route): Promise<void> {
    switch (route.kind) {
      case 'upload':
        return upload(req, res, repo, route.id);
      case 'manifest':
        return manifest(req, res, repo, route.reference);
      case 'blob':
        return blob(req, res, repo, route.digest);
      default:
        throw fail('UNSUPPORTED', `${req.method} is not supported on ${route.kind}`);
    }
  }

  /** Routes a write (any method but GET and HEAD, or any upload request). */
  return async function write(req: Request, res: Response, repo: Repository, route: V2Route): Promise<void> {
    try {
      await dispatch(req, res, repo, route);
    } catch (err) {
      // Refused before its body was read: close the connection rather than read (or keep) the rest.
      if (!req.complete && !res.headersSent) res.setHeader('connection', 'close');
      // A full disk under any write (an upload, a manifest, a tag, a session record): a clear answer, never a 500.
      if (isStorageFull(err)) throw new MirrorgateError('STORAGE_FULL', 'storage is full: nothing was stored', { cause: err });
      throw err;
    }
  };
}

function created(res: Response, location: string, digest: string): void {
  res.status(201).set({ location, 'docker-content-digest': digest, 'content-length': '0' }).end();
}

/** `Content-Range: <start>-<end>` of a chunk (inclusive), when sent; the upload answers a malformed one with its range. */
function parseContentRange(header: string | undefined): ChunkRange | undefined {
  if (header === undefined) return undefined;
  const m = /^(?:bytes[ =])?(\d{1,15})-(\d{1,15})$/.exec(header.trim().slice(0, 64));
  if (!m || Number(m[2]) < Number(m[1])) return 'malformed';
  return { start: Number(m[1]), end: Number(m[2]) };
}

/** A small request body (a manifest), refused past `max` bytes without reading the rest. */
async function readBody(req: Request, max: number): Promise<Buffer> {
  const length = Number(req.headers['content-length'] ?? NaN);
  if (length > max) throw new MirrorgateError('MANIFEST_INVALID', `manifest larger than ${max} bytes`, { status: 413 });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new MirrorgateError('MANIFEST_INVALID', `manifest larger than ${max} bytes`, { status: 413 });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
