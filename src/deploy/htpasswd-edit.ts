/**
 * Editing htpasswd text: add or replace one user's line, or remove it, keeping every other line (users,
 * comments, blank lines) as it was. The result is what the mirror's parser (src/mirror/auth/htpasswd.ts) reads.
 */

/** What the mirror accepts as a user name: 1-255 printable ASCII characters, no spaces, and no ':' (the separator). */
const USER_RE = /^[\x21-\x39\x3b-\x7e]{1,255}$/;

export function validUserName(user: string): boolean {
  return USER_RE.test(user);
}

function userOf(line: string): string | undefined {
  const t = line.trim();
  if (t === '' || t.startsWith('#')) return undefined;
  const colon = t.indexOf(':');
  return colon > 0 ? t.slice(0, colon) : undefined;
}

function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split(/\r?\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Replaces the user's line in place (every line of that user, if the file had duplicates: the first stays), or appends one. */
export function upsertUser(text: string, user: string, hash: string): { text: string; replaced: boolean } {
  if (!validUserName(user)) throw new Error(`invalid user name ${JSON.stringify(user)}: 1-255 printable ASCII characters, no spaces or ':'`);
  const entry = `${user}:${hash}`;
  let replaced = false;
  const out: string[] = [];
  for (const line of splitLines(text)) {
    if (userOf(line) !== user) out.push(line);
    else if (!replaced) {
      out.push(entry);
      replaced = true;
    }
  }
  if (!replaced) out.push(entry);
  return { text: `${out.join('\n')}\n`, replaced };
}

/** Removes the user's line(s); `removed` is false when the user was not there. */
export function removeUser(text: string, user: string): { text: string; removed: boolean } {
  const lines = splitLines(text);
  const kept = lines.filter((line) => userOf(line) !== user);
  return { text: kept.length > 0 ? `${kept.join('\n')}\n` : '', removed: kept.length !== lines.length };
}
