import { fail } from '../../common/errors.js';

/** What an `Authorization` header carries. */
export type AuthorizationHeader =
  | { scheme: 'basic'; username: string; password: string }
  | { scheme: 'bearer'; token: string };

const MAX_HEADER = 4096;
const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;
/** RFC 6750 b64token. */
const TOKEN68_RE = /^[A-Za-z0-9\-._~+/]+=*$/;
// eslint-disable-next-line no-control-regex -- control characters are exactly what it looks for
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

/**
 * Parses an `Authorization` header: `Basic <base64(user:password)>` or `Bearer <token>`. Undefined when
 * there is none; UNAUTHORIZED (never echoing the header) when it is malformed, repeated or of another scheme.
 */
export function parseAuthorization(header: string | string[] | undefined): AuthorizationHeader | undefined {
  if (header === undefined) return undefined;
  if (Array.isArray(header) || header.length > MAX_HEADER) throw fail('UNAUTHORIZED', 'malformed Authorization header');
  const m = /^([A-Za-z]+) +(\S+) *$/.exec(header);
  if (!m) throw fail('UNAUTHORIZED', 'malformed Authorization header');
  const scheme = m[1]!.toLowerCase();
  const value = m[2]!;
  if (scheme === 'bearer') {
    if (!TOKEN68_RE.test(value)) throw fail('UNAUTHORIZED', 'malformed bearer token');
    return { scheme: 'bearer', token: value };
  }
  if (scheme !== 'basic') throw fail('UNAUTHORIZED', 'unsupported authorization scheme');
  if (value.length % 4 !== 0 || !BASE64_RE.test(value)) throw fail('UNAUTHORIZED', 'malformed Basic credentials');
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw fail('UNAUTHORIZED', 'malformed Basic credentials');
  const username = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  if (CONTROL_RE.test(username) || CONTROL_RE.test(password) || decoded.includes('\ufffd')) {
    throw fail('UNAUTHORIZED', 'malformed Basic credentials');
  }
  return { scheme: 'basic', username, password };
}
