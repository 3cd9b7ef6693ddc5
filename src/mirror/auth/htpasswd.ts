/**
 * The htpasswd format, bcrypt entries only: `user:$2y$10$...` one a line, `#` comments and blank lines
 * allowed. Other formats (MD5 `$apr1$`, SHA `{SHA}`, crypt, plain text) are refused: they are weak, and a
 * file that mixes formats is more likely a mistake than a choice.
 */

/** bcrypt's modular crypt format: version, two-digit cost, 22 salt characters and 31 hash characters. */
const BCRYPT_RE = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;

/** bcrypt reads at most this many bytes of a password and ignores the rest. */
export const BCRYPT_MAX_PASSWORD_BYTES = 72;

/** Users and their bcrypt hashes. */
export type HtpasswdUsers = ReadonlyMap<string, string>;

export class HtpasswdError extends Error {
  /** One message per bad line, each naming the line number. */
  readonly problems: string[];
  constructor(problems: string[], source: string) {
    super(`${source}: ${problems.join('; ')}`);
    this.name = 'HtpasswdError';
    this.problems = problems;
  }
}

function describeFormat(hash: string): string {
  if (hash.startsWith('$apr1$')) return 'an Apache MD5 ($apr1$) hash';
  if (hash.startsWith('{SHA}')) return 'a SHA-1 ({SHA}) hash';
  if (/^\$[156]\$/.test(hash)) return 'a crypt(3) MD5/SHA hash';
  if (/^\$2[aby]\$/.test(hash)) return 'a malformed bcrypt hash';
  if (/^\$2x\$/.test(hash)) return 'a $2x$ bcrypt hash (the buggy variant)';
  return 'not a bcrypt hash (crypt or plain text?)';
}

/**
 * Parses htpasswd text. All problems are collected and thrown together; messages name the line number and
 * the user, never the hash or anything after the colon.
 */
export function parseHtpasswd(text: string, source = 'htpasswd'): HtpasswdUsers {
  const users = new Map<string, string>();
  const problems: string[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const n = i + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    if (colon <= 0) {
      problems.push(`line ${n}: expected "user:bcrypt-hash"`);
      return;
    }
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (!/^[\x21-\x7e]{1,255}$/.test(user)) {
      problems.push(`line ${n}: user name must be 1-255 printable ASCII characters without spaces`);
      return;
    }
    if (!BCRYPT_RE.test(hash)) {
      problems.push(`line ${n} (user ${JSON.stringify(user)}): ${describeFormat(hash)}; only bcrypt ($2a$, $2b$, $2y$) is accepted (htpasswd -B)`);
      return;
    }
    if (users.has(user)) {
      problems.push(`line ${n}: user ${JSON.stringify(user)} appears twice`);
      return;
    }
    users.set(user, hash);
  });
  if (problems.length > 0) throw new HtpasswdError(problems, source);
  return users;
}
