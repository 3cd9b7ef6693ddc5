import { MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { isValidTag } from '../../reference/grammar.js';
import { readCapped } from '../proxy/read-capped.js';
import type { LocalManifestStore } from '../local/local-manifest-store.js';
import type { RepositoryRef } from '../store/types.js';
import { header } from '../upstream/client.js';
import { isUpstreamOutage, upstreamFailure } from '../upstream/status.js';
import type { Upstreams } from '../upstream/upstreams.js';
import { PAGE_MAX, paginate, type PageRequest } from './pagination.js';

/**
 * Most bytes read of one upstream tag list. A full answer (PAGE_MAX tags of the grammar's 128 characters)
 * is about 1.3 MB; beyond this the upstream is ignoring `n` or hostile, and the list is refused.
 */
const TAGS_MAX_BYTES = 2 * 1024 * 1024;

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
    return await listUpstream(deps.upstreams, repo, page, deps.logger);
  } catch (err) {
    if (!isUpstreamOutage(err)) throw err;
    const cached = await deps.local.listTags(repo);
    if (cached.length === 0) throw err;
    deps.logger.warn({ upstream: repo.upstream, repository: repo.path, err: (err as Error).message }, 'upstream unavailable; listing cached tags');
    const p = paginate(cached, page);
    return p.next ? { tags: p.items, next: p.next } : { tags: p.items };
  }
}

/**
 * One page from the upstream, trusting nothing in it: tags that break the grammar are dropped, the page
 * is cut to `n` (at most PAGE_MAX) and starts after `last` even when the upstream ignores them (Debian's
 * registry does), and the next page is built from values checked here.
 */
async function listUpstream(upstreams: Upstreams, repo: RepositoryRef, page: PageRequest, logger: Logger): Promise<TagPage> {
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
  const listed = Array.isArray(doc.tags) ? doc.tags : [];
  const tags = listed.filter((t): t is string => typeof t === 'string' && isValidTag(t)).sort();
  if (tags.length < listed.length) {
    logger.warn({ upstream: repo.upstream, repository: repo.path, dropped: listed.length - tags.length }, 'upstream tag list: entries that are not valid tags dropped');
  }
  const p = paginate(tags, { n: page.n ?? PAGE_MAX, last: page.last });
  const link = header(res.headers, 'link');
  const upstreamNext = link && page.n !== 0 ? parseNextLink(link) : undefined;
  const next = p.next ?? (upstreamNext ? { n: page.n ?? upstreamNext.n, last: upstreamNext.last } : undefined);
  return next ? { tags: p.items, next } : { tags: p.items };
}

/**
 * Reads `n` and `last` out of an upstream's `Link: <...?n=..&last=..>; rel="next"`: `last` must be a valid
 * tag (else undefined), `n` is clamped to 1..PAGE_MAX.
 */
export function parseNextLink(link: string): { n: number; last: string } | undefined {
  const m = /<([^>]*)>\s*;\s*rel="?next"?/i.exec(link);
  if (!m) return undefined;
  let url: URL;
  try {
    url = new URL(m[1]!, 'http://upstream.invalid');
  } catch {
    return undefined;
  }
  const last = url.searchParams.get('last');
  const n = Number(url.searchParams.get('n') ?? '100');
  return last && isValidTag(last) && Number.isSafeInteger(n) ? { n: Math.min(Math.max(n, 1), PAGE_MAX), last } : undefined;
}
