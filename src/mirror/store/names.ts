import { fail } from '../../common/errors.js';
import { isValidTag, parseDigest } from '../../reference/grammar.js';
import type { RepositoryRef } from './types.js';

/**
 * Checks of the names every store puts into a path or a key, done where the path or key is built: nothing a
 * client sends can then point outside a store's own records.
 */

/** NAME_INVALID unless the repository is a valid upstream key and path (no "..", no leading "/" or "."). */
export function checkRepository(repo: RepositoryRef): void {
  // Upstream keys and repository paths were validated against the reference grammar already; checked again
  // here because this is where a path or key is built from them.
  if (!/^[a-z0-9.:[\]-]+$/.test(repo.upstream) || repo.upstream.startsWith('.') || repo.path.split('/').some((c) => !/^[a-z0-9]/.test(c))) {
    throw fail('NAME_INVALID', `invalid repository ${repo.upstream}/${repo.path}`);
  }
}

/** TAG_INVALID unless it is a tag of the reference grammar. */
export function checkTag(tag: string): void {
  if (!isValidTag(tag)) throw fail('TAG_INVALID', `invalid tag ${JSON.stringify(tag.slice(0, 200))}`);
}

/** The digest's algorithm and hex; DIGEST_INVALID when it is not a digest. */
export function digestParts(digest: string): { algorithm: string; hex: string } {
  const d = parseDigest(digest);
  if (!d) throw fail('DIGEST_INVALID', `invalid digest ${JSON.stringify(digest)}`);
  return d;
}

/** BLOB_UPLOAD_UNKNOWN unless it has the shape of the ids the mirror hands out. */
export function checkUploadId(id: string): void {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(id)) throw fail('BLOB_UPLOAD_UNKNOWN', 'invalid upload id');
}
