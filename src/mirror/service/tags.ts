import { MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { readCapped } from '../proxy/read-capped.js';
import type { LocalManifestStore } from '../local/local-manifest-store.js';
import type { RepositoryRef } from '../store/types.js';
import { header } from '../upstream/client.js';
import { isUpstreamOutage, upstreamFailure } from '../upstream/status.js';
import type { Upstreams } from '../upstream/upstreams.js';
import { paginate, type PageRequest } from './pagination.js';

const TAGS_MAX_BYTES = 16 * 1024 * 1024;

export interface TagPage {
  tags: string[];
  /** Query of the next page, when there is one. */
  next?: { n: number; last: string };
}

/**
 * Tag listing: the upstream is the authority (the cache holds only tags someone pulled), paginated with
 * the client's `n`/`last` passed through. When the upstream is unavailable, the cached tags are listed.
 */
export async function listTags(deps: { upstreams: Upstreams; local: Pick<LocalManifestStore, 'listTags'>; logger: Logger }, repo: RepositoryRef, page: PageRequest): Promise<TagPage> {
  try {
    return await listUpstream(deps.upstreams, repo, page);
  } catch (err) {
    if (!isUpstreamOutage(err)) throw err;
    const cached = await deps.local.listTags(repo);
    if (cached.length === 0) throw err;
    deps.logger.warn({ upstream: repo.upstream, repository: repo.path, err: (err as Error).message }, 'upstream unavailable; listing cached tags');
    const p = paginate(cached, page);
    return p.next ? { tags: p.items, next: p.next } : { tags: p.items };
  }
}

async function listUpstream(upstreams: Upstreams, repo: RepositoryRef, page: PageRequest): Promise<TagPage> {
  const query = new URLSearchParams();
  if (page.n !== undefined) query.set('n', String(page.n));
  if (page.last !== undefined) query.set('last', page.last);
  const qs = query.size > 0 ? `?${query.toString()}` : '';
  const client = upstreams.client(repo.upstream);
  const res = await client.request({ method: 'GET', path: `/v2/${repo.path}/tags/list${qs}`, repository: repo.path, kind: 'tags' });
  if (res.status !== 200) throw await upstreamFailure(res, 'NAME_UNKNOWN', `repository ${repo.path}`, repo.upstream);
  const bytes = await readCapped(res.body, TAGS_MAX_BYTES, `tag list of ${repo.path}`);
  let doc: { tags?: unknown };
  try {
    doc = JSON.parse(bytes.toString('utf8')) as { tags?: unknown };
  } catch {
    throw new MirrorgateError('UPSTREAM_INVALID_CONTENT', `${repo.upstream} sent an invalid tag list`);
  }
  const tags = Array.isArray(doc.tags) ? doc.tags.filter((t): t is string => typeof t === 'string') : [];
  const link = header(res.headers, 'link');
  const next = link ? parseNextLink(link) : undefined;
  return next ? { tags, next } : { tags };
}

/** Reads `n` and `last` out of an upstream's `Link: <...?n=..&last=..>; rel="next"`. */
export function parseNextLink(link: string): { n: number; last: string } | undefined {
  const m = /<([^>]*)>\s*;\s*rel="?next"?/i.exec(link);
  if (!m) return undefined;
  const url = new URL(m[1]!, 'http://upstream.invalid');
  const last = url.searchParams.get('last');
  const n = Number(url.searchParams.get('n') ?? '100');
  return last && Number.isSafeInteger(n) ? { n, last } : undefined;
}
