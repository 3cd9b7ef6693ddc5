/** A parsed `WWW-Authenticate` challenge (RFC 7235), as registries send them. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses the challenges of a WWW-Authenticate header. Handles quoted values with commas and escapes,
 * and several challenges in one header (`Bearer realm="..", Basic realm=".."`).
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (!header) return [];
  const text = Array.isArray(header) ? header.join(', ') : header;
  const out: Challenge[] = [];
  const re = /\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?:\s+|$)/y;
  let i = 0;
  while (i < text.length) {
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) break;
    const challenge: Challenge = { scheme: m[1]!.toLowerCase(), params: {} };
    i = re.lastIndex;
    // auth-params: key=value or key="quoted", separated by commas; stop at the next scheme token.
    const param = /\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(,|$)?/y;
    for (;;) {
      param.lastIndex = i;
      const p = param.exec(text);
      if (!p) break;
      challenge.params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
      i = param.lastIndex;
      if (p[4] === undefined) break;
    }
    out.push(challenge);
    while (i < text.length && (text[i] === ',' || text[i] === ' ')) i++;
  }
  return out;
}
