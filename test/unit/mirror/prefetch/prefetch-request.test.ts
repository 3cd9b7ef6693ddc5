import { describe, expect, it } from 'vitest';
import { MirrorgateError } from '../../../../src/common/errors.js';
import { parsePrefetchRequest, PREFETCH_MAX_IMAGES } from '../../../../src/mirror/prefetch/prefetch-request.js';

const D = `sha256:${'ab'.repeat(32)}`;
const parse = (doc: unknown) => parsePrefetchRequest(Buffer.from(typeof doc === 'string' ? doc : JSON.stringify(doc)));
function codeOf(doc: unknown): string {
  try {
    parse(doc);
  } catch (err) {
    return (err as MirrorgateError).code + ' ' + String((err as MirrorgateError).status);
  }
  return 'parsed';
}

describe('parsePrefetchRequest', () => {
  it('takes names as clients pull them, with a tag, a digest or both (the digest is what is fetched)', () => {
    expect(parse({ images: ['library/nginx:1.27', `ghcr.io/org/app@${D}`, `quay.io/a/b:v1@${D}`, 'team/app:latest'] })).toEqual([
      { image: 'library/nginx:1.27', name: 'library/nginx', reference: '1.27' },
      { image: `ghcr.io/org/app@${D}`, name: 'ghcr.io/org/app', reference: D },
      { image: `quay.io/a/b:v1@${D}`, name: 'quay.io/a/b', reference: D },
      { image: 'team/app:latest', name: 'team/app', reference: 'latest' },
    ]);
  });

  it('refuses the whole request on any bad entry, with the code that names the problem', () => {
    expect(codeOf('{nope')).toBe('UNSUPPORTED 400');
    expect(codeOf([])).toBe('UNSUPPORTED 400');
    expect(codeOf({ images: 'library/nginx:1' })).toBe('UNSUPPORTED 400');
    expect(codeOf({ images: [] })).toBe('UNSUPPORTED 400');
    expect(codeOf({ images: Array.from({ length: PREFETCH_MAX_IMAGES + 1 }, (_, i) => `library/a:${i}`) })).toBe('UNSUPPORTED 400');
    expect(codeOf({ images: Array.from({ length: PREFETCH_MAX_IMAGES }, (_, i) => `library/a:${i}`) })).toBe('parsed');
    expect(codeOf({ images: ['library/nginx:1', 42] })).toBe('NAME_INVALID 400');
    expect(codeOf({ images: ['Library/Nginx:1'] })).toBe('NAME_INVALID 400');
    expect(codeOf({ images: ['../etc/passwd:1'] })).toBe('NAME_INVALID 400');
    expect(codeOf({ images: ['127.0.0.1:5000/a:1'] })).toBe('NAME_INVALID 400');
    expect(codeOf({ images: ['library/nginx'] })).toBe('TAG_INVALID 400');
    expect(codeOf({ images: ['library/nginx:-bad'] })).toBe('TAG_INVALID 400');
    expect(codeOf({ images: ['library/nginx@sha256:abc'] })).toBe('DIGEST_INVALID 400');
    expect(codeOf({ images: [`library/nginx@${D.toUpperCase()}`] })).toBe('DIGEST_INVALID 400');
    expect(codeOf({ images: [`library/${'a'.repeat(600)}:1`] })).toBe('NAME_INVALID 400');
  });
});
