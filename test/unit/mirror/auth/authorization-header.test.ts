import { describe, expect, it } from 'vitest';
import { MirrorgateError } from '../../../../src/common/errors.js';
import { parseAuthorization } from '../../../../src/mirror/auth/authorization-header.js';

const basic = (s: string): string => `Basic ${Buffer.from(s, 'utf8').toString('base64')}`;

function refusal(header: string | string[]): MirrorgateError {
  try {
    parseAuthorization(header);
  } catch (err) {
    return err as MirrorgateError;
  }
  throw new Error(`accepted ${JSON.stringify(header)}`);
}

describe('parseAuthorization', () => {
  it('reads Basic credentials (password may contain colons and non-ASCII) and Bearer tokens', () => {
    expect(parseAuthorization(undefined)).toBeUndefined();
    expect(parseAuthorization(basic('alice:pa:ss wörd'))).toEqual({ scheme: 'basic', username: 'alice', password: 'pa:ss wörd' });
    expect(parseAuthorization(`basic ${Buffer.from('a:').toString('base64')}`)).toEqual({ scheme: 'basic', username: 'a', password: '' });
    expect(parseAuthorization('Bearer abc.DEF-_~+/=')).toEqual({ scheme: 'bearer', token: 'abc.DEF-_~+/=' });
  });

  it.each([
    ['no scheme', 'dXNlcjpwYXNz'],
    ['empty', ''],
    ['another scheme', 'Digest username="x"'],
    ['not base64', 'Basic !!!!'],
    ['bad padding', 'Basic YWJj='],
    ['no colon', basic('alice')],
    ['empty user', basic(':secret')],
    ['NUL in user', basic('al\u0000ice:x')],
    ['newline in password', basic('alice:a\nb')],
    ['invalid UTF-8', `Basic ${Buffer.from([0x61, 0x3a, 0xff, 0xfe]).toString('base64')}`],
    ['two values', 'Basic YTpi YTpi'],
    ['huge', basic(`a:${'x'.repeat(5000)}`)],
    ['bad bearer', 'Bearer a"b'],
  ])('refuses %s with UNAUTHORIZED and without echoing it', (_name, header) => {
    const err = refusal(header);
    expect(err.code).toBe('UNAUTHORIZED');
    expect(err.status).toBe(401);
    if (header.length > 8) expect(err.message).not.toContain(header.slice(6));
  });

  it('refuses a repeated header', () => {
    expect(refusal([basic('a:b'), basic('c:d')]).code).toBe('UNAUTHORIZED');
  });
});
