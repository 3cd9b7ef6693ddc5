import { MirrorgateError } from '../../common/errors.js';
import type { ByteRange, RangeRequest } from './types.js';

/** Resolves a requested range against a blob's size; RANGE_INVALID (416) when it cannot be satisfied. */
export function resolveRange(req: RangeRequest, size: number): ByteRange {
  let start: number;
  let end: number;
  if ('suffix' in req) {
    start = Math.max(0, size - req.suffix);
    end = size - 1;
  } else {
    start = req.start;
    end = Math.min(req.end ?? size - 1, size - 1);
  }
  if (size === 0 || start >= size || start > end || ('suffix' in req && req.suffix === 0)) {
    throw new MirrorgateError('RANGE_INVALID', `range not satisfiable for a blob of ${size} bytes`, {
      headers: { 'content-range': `bytes */${size}` },
    });
  }
  return { start, end };
}

/** Longer than any range a client needs (`bytes=<20 digits>-<20 digits>` with some spaces). */
const MAX_RANGE_HEADER = 256;
const DIGITS_RE = /^\d*$/;

/**
 * Parses a `Range` header. Only one `bytes=` range is served (registries never need more); anything else,
 * and any header longer than MAX_RANGE_HEADER, is ignored as RFC 9110 allows, and the whole blob is sent.
 * Split at `=` and `-` and trimmed rather than matched with one pattern: runs of optional whitespace next
 * to optional digits made that pattern backtrack quadratically on a header of spaces.
 */
export function parseRangeHeader(header: string | undefined): RangeRequest | undefined {
  if (!header || header.length > MAX_RANGE_HEADER) return undefined;
  const eq = header.indexOf('=');
  if (eq < 0 || header.slice(0, eq).trim().toLowerCase() !== 'bytes') return undefined;
  const spec = header.slice(eq + 1);
  const dash = spec.indexOf('-');
  if (dash < 0) return undefined;
  const first = spec.slice(0, dash).trim();
  const last = spec.slice(dash + 1).trim();
  if (!DIGITS_RE.test(first) || !DIGITS_RE.test(last) || (first === '' && last === '')) return undefined;
  if (first === '') return { suffix: Number(last) };
  const start = Number(first);
  if (last === '') return { start };
  const end = Number(last);
  if (end < start || !Number.isSafeInteger(end)) return undefined;
  return Number.isSafeInteger(start) ? { start, end } : undefined;
}
