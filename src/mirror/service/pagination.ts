import { fail } from '../../common/errors.js';
import { isValidTag } from '../../reference/grammar.js';

export const PAGE_MAX = 10_000;

export interface PageRequest {
  n: number | undefined;
  last: string | undefined;
}

/** Validates `n` and `last` (bounded: no unbounded query parameters reach storage or an upstream). */
export function parsePageRequest(query: { n?: unknown; last?: unknown }, lastIsTag: boolean): PageRequest {
  let n: number | undefined;
  if (query.n !== undefined) {
    if (typeof query.n !== 'string' || !/^\d{1,6}$/.test(query.n) || Number(query.n) > PAGE_MAX) {
      throw fail('PAGINATION_NUMBER_INVALID', `n must be an integer from 0 to ${PAGE_MAX}`);
    }
    n = Number(query.n);
  }
  let last: string | undefined;
  if (query.last !== undefined) {
    if (typeof query.last !== 'string' || query.last.length > 512 || (lastIsTag && query.last !== '' && !isValidTag(query.last))) {
      throw fail(lastIsTag ? 'TAG_INVALID' : 'NAME_INVALID', 'invalid last parameter');
    }
    last = query.last || undefined;
  }
  return { n, last };
}

/** One page of a sorted list, and the query of the next page when there is one. */
export function paginate(sorted: string[], page: PageRequest): { items: string[]; next?: { n: number; last: string } } {
  const from = page.last === undefined ? 0 : sorted.findIndex((x) => x > page.last!);
  const rest = from < 0 ? [] : sorted.slice(from);
  if (page.n === undefined || rest.length <= page.n) return { items: rest };
  const items = rest.slice(0, page.n);
  return items.length > 0 ? { items, next: { n: page.n, last: items[items.length - 1]! } } : { items };
}

export function nextLink(path: string, next: { n: number; last: string } | undefined): string | undefined {
  if (!next) return undefined;
  return `<${path}?n=${next.n}&last=${encodeURIComponent(next.last)}>; rel="next"`;
}
