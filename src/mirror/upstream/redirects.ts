import { isIP } from 'node:net';
import { isPublicAddress } from './addresses.js';

/**
 * Why the mirror does not follow a blob redirect from `upstream` to `target`, or undefined when it does.
 * The upstream's own origin is always fine. Anywhere else: never from https down to http; plain http only
 * from an http upstream that allows private redirects; an address literal must be public unless private
 * redirects are allowed. Host names are checked when the connection looks them up (`publicOnlyLookup`).
 */
export function redirectRefusal(target: URL, upstream: URL, allowPrivate: boolean): string | undefined {
  if (target.protocol !== 'https:' && target.protocol !== 'http:') return `scheme ${target.protocol} is not http(s)`;
  if (target.origin === upstream.origin) return undefined;
  if (target.protocol === 'http:') {
    if (upstream.protocol === 'https:') return 'an https upstream redirected to plain http';
    if (!allowPrivate) return 'plain http to another host';
  }
  const literal = target.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!allowPrivate && isIP(literal) !== 0 && !isPublicAddress(literal)) return 'not a public address';
  return undefined;
}
