/**
 * Exclude patterns for image references. `*` matches within one path component (no `/`), `**` matches anything,
 * `?` one character other than `/`. A pattern is anchored at both ends.
 */
export type ImageMatcher = (candidates: readonly string[]) => boolean;

function globToRegExp(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        out += '.*';
        i++;
      } else {
        out += '[^/]*';
      }
    } else if (c === '?') {
      out += '[^/]';
    } else {
      out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${out}$`);
}

/** One matcher for a list of patterns; it is true when any pattern matches any candidate string. */
export function compileMatcher(patterns: readonly string[]): ImageMatcher {
  const res = patterns.map(globToRegExp);
  if (res.length === 0) return () => false;
  return (candidates) => candidates.some((c) => res.some((re) => re.test(c)));
}
