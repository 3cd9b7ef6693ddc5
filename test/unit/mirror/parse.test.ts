import { describe, expect, it } from 'vitest';
import { MirrorgateError } from '../../../src/common/errors.js';
import { parseAccept, parseV2Path } from '../../../src/mirror/http/parse.js';
import { parseRangeHeader, resolveRange } from '../../../src/mirror/store/range.js';
import { paginate, parsePageRequest } from '../../../src/mirror/service/pagination.js';

const D = `sha256:${'a'.repeat(64)}`;

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof MirrorgateError ? err.code : 'NOT_A_MIRRORGATE_ERROR';
  }
  return undefined;
}

describe('parseV2Path', () => {
  it('routes manifests, blobs, tags and referrers with slashes in names', () => {
    expect(parseV2Path('/v2/library/nginx/manifests/1.27')).toEqual({ kind: 'manifest', name: 'library/nginx', reference: '1.27' });
    expect(parseV2Path(`/v2/ghcr.io/org/app/blobs/${D}`)).toEqual({ kind: 'blob', name: 'ghcr.io/org/app', digest: D });
    expect(parseV2Path('/v2/a/b/c/tags/list')).toEqual({ kind: 'tags', name: 'a/b/c' });
    expect(parseV2Path(`/v2/a/referrers/${D}`)).toEqual({ kind: 'referrers', name: 'a', digest: D });
    expect(parseV2Path('/v2/a/blobs/uploads/')).toEqual({ kind: 'upload', name: 'a' });
    expect(parseV2Path('/v2/a/unknown/x')).toBeUndefined();
  });
  it('refuses hostile and malformed input with spec codes', () => {
    expect(code(() => parseV2Path('/v2/a%2f..%2fetc/manifests/x'))).toBe('NAME_INVALID');
    expect(code(() => parseV2Path('/v2/a//b/manifests/x'))).toBe('NAME_INVALID');
    expect(code(() => parseV2Path(`/v2/${'a/'.repeat(2000)}manifests/x`))).toBe('NAME_INVALID');
    expect(code(() => parseV2Path('/v2/a/manifests/.hidden', 'PUT'))).toBe('TAG_INVALID');
    expect(code(() => parseV2Path('/v2/a/manifests/sha256:zz', 'PUT'))).toBe('DIGEST_INVALID');
    // Neither a tag nor a digest: a read finds no such manifest.
    expect(code(() => parseV2Path('/v2/a/manifests/.hidden', 'GET'))).toBe('MANIFEST_UNKNOWN');
    expect(code(() => parseV2Path('/v2/a/manifests/sha256:zz', 'HEAD'))).toBe('MANIFEST_UNKNOWN');
    expect(code(() => parseV2Path(`/v2/a/blobs/md5:${'a'.repeat(32)}`))).toBe('DIGEST_INVALID');
    expect(code(() => parseV2Path(`/v2/a/blobs/sha256:${'A'.repeat(64)}`))).toBe('DIGEST_INVALID');
    expect(code(() => parseV2Path(`/v2/a/blobs/sha256:${'a'.repeat(63)}`))).toBe('DIGEST_INVALID');
  });
  it('parses Accept headers', () => {
    expect(parseAccept('application/vnd.oci.image.index.v1+json; q=0.9, application/json')).toEqual(['application/vnd.oci.image.index.v1+json', 'application/json']);
    expect(parseAccept(['a/b', 'c/d'])).toEqual(['a/b', 'c/d']);
    expect(parseAccept(undefined)).toEqual([]);
  });
});

describe('ranges', () => {
  it('parses and resolves byte ranges', () => {
    expect(parseRangeHeader('bytes=0-99')).toEqual({ start: 0, end: 99 });
    expect(parseRangeHeader('bytes=100-')).toEqual({ start: 100 });
    expect(parseRangeHeader('bytes=-10')).toEqual({ suffix: 10 });
    expect(parseRangeHeader('bytes=5-1')).toBeUndefined();
    expect(parseRangeHeader('items=0-1')).toBeUndefined();
    expect(parseRangeHeader('bytes=0-1,5-6')).toBeUndefined();
    expect(parseRangeHeader(' BYTES = 0 - 99 ')).toEqual({ start: 0, end: 99 });
    expect(parseRangeHeader('bytes=\t7-\t')).toEqual({ start: 7 });
    expect(parseRangeHeader('bytes= -5')).toEqual({ suffix: 5 });
    for (const bad of ['bytes=-', 'bytes=', 'bytes 0-1', 'bytes=0-1-2', 'bytes=a-1', 'bytes=1 0-2', 'bytes=0x1-2', 'xbytes=0-1']) {
      expect(parseRangeHeader(bad), bad).toBeUndefined();
    }
    expect(parseRangeHeader(`bytes=0-99${' '.repeat(300)}`)).toBeUndefined(); // longer than any real Range header
    expect(resolveRange({ start: 100 }, 1000)).toEqual({ start: 100, end: 999 });
    expect(resolveRange({ start: 0, end: 5000 }, 1000)).toEqual({ start: 0, end: 999 });
    expect(resolveRange({ suffix: 10 }, 1000)).toEqual({ start: 990, end: 999 });
    expect(code(() => resolveRange({ start: 1000 }, 1000))).toBe('RANGE_INVALID');
  });
});

describe('pagination', () => {
  it('pages a sorted list with n and last', () => {
    const all = ['a', 'b', 'c', 'd', 'e'];
    expect(paginate(all, { n: 2, last: undefined })).toEqual({ items: ['a', 'b'], next: { n: 2, last: 'b' } });
    expect(paginate(all, { n: 2, last: 'b' })).toEqual({ items: ['c', 'd'], next: { n: 2, last: 'd' } });
    expect(paginate(all, { n: 2, last: 'd' })).toEqual({ items: ['e'] });
    expect(paginate(all, { n: undefined, last: 'c' })).toEqual({ items: ['d', 'e'] });
  });
  it('bounds n and validates last', () => {
    expect(code(() => parsePageRequest({ n: '-1' }, true))).toBe('PAGINATION_NUMBER_INVALID');
    expect(code(() => parsePageRequest({ n: '99999999' }, true))).toBe('PAGINATION_NUMBER_INVALID');
    expect(code(() => parsePageRequest({ last: '../x' }, true))).toBe('TAG_INVALID');
    expect(parsePageRequest({ n: '10', last: 'v1' }, true)).toEqual({ n: 10, last: 'v1' });
  });
});
