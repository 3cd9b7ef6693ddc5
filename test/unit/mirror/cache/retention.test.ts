import { describe, expect, it } from 'vitest';
import { compileRetention, policyFor } from '../../../../src/mirror/cache/retention.js';
import { globToRegExp } from '../../../../src/reference/match.js';

describe('retention patterns', () => {
  it('* stays within a path component, ** crosses them', () => {
    expect(globToRegExp('library/*').test('library/nginx')).toBe(true);
    expect(globToRegExp('library/*').test('library/a/b')).toBe(false);
    expect(globToRegExp('team/**').test('team/a/b/c')).toBe(true);
    expect(globToRegExp('**/cache').test('cache')).toBe(true);
    expect(globToRegExp('**/cache').test('a/b/cache')).toBe(true);
    expect(globToRegExp('a.b').test('axb')).toBe(false);
  });

  it('the first matching policy wins, by upstream and repository', () => {
    const policies = compileRetention([
      { upstream: 'ghcr.io', repository: '**', keepLast: 1 },
      { upstream: '*', repository: 'library/*', keepLast: 5 },
      { upstream: '*', repository: '**', expireAfter: 86_400_000 },
    ]);
    expect(policyFor(policies, { upstream: 'ghcr.io', path: 'library/x' })?.keepLast).toBe(1);
    expect(policyFor(policies, { upstream: 'docker.io', path: 'library/x' })?.keepLast).toBe(5);
    expect(policyFor(policies, { upstream: 'docker.io', path: 'bitnami/redis' })?.describe).toBe('*/**, expireAfter 1d');
  });
});
