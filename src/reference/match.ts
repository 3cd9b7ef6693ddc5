/** Exclude patterns for image references (see globToRegExp). */
export type ImageMatcher = (candidates: readonly string[]) => boolean;

/**
 * The one glob dialect of the configuration (exclude patterns, hosted repositories, access rules, retention):
 * `*` matches within one path component, `**` across components (followed by a slash it also matches no
 * component at all, so `library`, `**`, `x` joined by slashes matches `library/x`), `?` one character other
 * than `/`; anchored at both ends.
 */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      if (glob[i + 2] === '/') {
        re += '(?:.*/)?';
        i += 2;
      } else {
        re += '.*';
        i += 1;
      }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** One matcher for a list of patterns; it is true when any pattern matches any candidate string. */
export function compileMatcher(patterns: readonly string[]): ImageMatcher {
  const res = patterns.map(globToRegExp);
  if (res.length === 0) return () => false;
  return (candidates) => candidates.some((c) => res.some((re) => re.test(c)));
}
