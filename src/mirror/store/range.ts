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

/**
 * Parses a `Range` header. Only one `bytes=` range is served (registries never need more); anything else
 * is ignored as RFC 9110 allows, and the whole blob is sent.
 */
export function parseRangeHeader(header: string | undefined): RangeRequest | undefined {
  if (!header) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') return { suffix: Number(m[2]) };
  const start = Number(m[1]);
  if (m[2] === '') return { start };
  const end = Number(m[2]);
  if (end < start || !Number.isSafeInteger(end)) return undefined;
  return Number.isSafeInteger(start) ? { start, end } : undefined;
}
