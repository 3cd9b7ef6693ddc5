import { fail } from '../../common/errors.js';
import { isValidTag, parseDigest } from '../../reference/grammar.js';

export type V2Route =
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'upload'; name: string; id: string | undefined }
  | { kind: 'tags'; name: string }
  | { kind: 'referrers'; name: string; digest: string };

const MAX_PATH = 2048;

/**
 * Parses a `/v2/...` path. Checks happen here, before any storage or upstream use: no percent-encoding
 * (names, tags and digests never need it, and it is how `..` and encoded slashes get smuggled), bounded
 * length, a valid tag or digest. A manifest reference that is neither is simply not there for a read
 * (`404 MANIFEST_UNKNOWN`, as the spec's conformance suite expects) and a client error for anything else
 * (`400 TAG_INVALID` or `DIGEST_INVALID`).
 */
export function parseV2Path(rawPath: string, method = 'GET'): V2Route | undefined {
  if (rawPath.length > MAX_PATH) throw fail('NAME_INVALID', 'request path too long');
  if (rawPath.includes('%') || rawPath.includes('\\') || rawPath.includes('//')) throw fail('NAME_INVALID', 'repository names cannot contain encoded or empty components');
  let m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(rawPath);
  if (m) {
    const reference = m[2]!;
    const isDigest = reference.includes(':');
    if (isDigest ? !parseDigest(reference) : !isValidTag(reference)) {
      const shown = JSON.stringify(reference.slice(0, 200));
      if (method === 'GET' || method === 'HEAD') throw fail('MANIFEST_UNKNOWN', `no manifest ${shown}: not a tag or a digest`);
      throw isDigest ? fail('DIGEST_INVALID', `invalid digest ${shown}`) : fail('TAG_INVALID', `invalid tag ${shown}`);
    }
    return { kind: 'manifest', name: m[1]!, reference };
  }
  m = /^\/v2\/(.+)\/blobs\/uploads\/?([^/]*)$/.exec(rawPath);
  if (m) return { kind: 'upload', name: m[1]!, id: m[2] || undefined };
  m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(rawPath);
  if (m) {
    if (!parseDigest(m[2]!)) throw fail('DIGEST_INVALID', `invalid digest ${JSON.stringify(m[2]!.slice(0, 200))}`);
    return { kind: 'blob', name: m[1]!, digest: m[2]! };
  }
  m = /^\/v2\/(.+)\/tags\/list$/.exec(rawPath);
  if (m) return { kind: 'tags', name: m[1]! };
  m = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(rawPath);
  if (m) {
    if (!parseDigest(m[2]!)) throw fail('DIGEST_INVALID', `invalid digest ${JSON.stringify(m[2]!.slice(0, 200))}`);
    return { kind: 'referrers', name: m[1]!, digest: m[2]! };
  }
  return undefined;
}

/** Media types from Accept header(s), parameters dropped. Bounded: at most 64 entries. */
export function parseAccept(header: string | string[] | undefined): string[] {
  if (!header) return [];
  const text = Array.isArray(header) ? header.join(',') : header;
  return text
    .split(',')
    .slice(0, 64)
    .map((t) => t.split(';')[0]!.trim().toLowerCase())
    .filter(Boolean);
}

/** One query parameter as a string; repeated or array-shaped parameters are refused. */
export function singleQuery(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw fail('NAME_INVALID', `query parameter ${name} given more than once`);
  return value;
}
