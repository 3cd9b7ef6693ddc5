import { MirrorgateError, type ErrorCode } from '../../common/errors.js';
import { discard, header, type UpstreamResponse } from './client.js';

/**
 * Turns an upstream answer that is not the one wanted into the error the client gets. Drains the body.
 * 404 and 401/403 (Docker Hub's answer for a repository that does not exist) are definitive; 429 passes
 * Retry-After through; the rest means the upstream is unavailable.
 */
export async function upstreamFailure(res: UpstreamResponse, notFound: ErrorCode, what: string, upstream: string): Promise<MirrorgateError> {
  await discard(res.body);
  const detail = { upstream, upstreamStatus: res.status };
  if (res.status === 404) return new MirrorgateError(notFound, `${what} not found upstream (${upstream})`, { detail });
  if (res.status === 401 || res.status === 403) {
    return new MirrorgateError(notFound, `${what}: ${upstream} denied access (the repository does not exist or needs credentials)`, { detail });
  }
  if (res.status === 429) {
    const retryAfter = header(res.headers, 'retry-after');
    return new MirrorgateError('TOOMANYREQUESTS', `${upstream} is rate limiting the mirror`, {
      detail,
      headers: retryAfter ? { 'retry-after': retryAfter } : {},
    });
  }
  return new MirrorgateError('UPSTREAM_UNAVAILABLE', `${upstream} answered ${res.status} for ${what}`, { detail });
}

/** True for failures where serving stale cached content is better than an error. */
export function isUpstreamOutage(err: unknown): boolean {
  if (!(err instanceof MirrorgateError)) return false;
  return err.code === 'UPSTREAM_UNAVAILABLE' || err.code === 'TOOMANYREQUESTS' || err.code === 'UNAUTHORIZED' || err.code === 'UPSTREAM_INVALID_CONTENT';
}
