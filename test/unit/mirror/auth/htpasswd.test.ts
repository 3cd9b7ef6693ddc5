import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { HtpasswdError, parseHtpasswd } from '../../../../src/mirror/auth/htpasswd.js';

const alice = bcrypt.hashSync('alice-pass', 4);
const bob = bcrypt.hashSync('bob-pass', 4).replace(/^\$2b\$/, '$2y$'); // as `htpasswd -B` writes it

function problemsOf(text: string): string[] {
  try {
    parseHtpasswd(text, 'users.htpasswd');
  } catch (err) {
    expect(err).toBeInstanceOf(HtpasswdError);
    return (err as HtpasswdError).problems;
  }
  throw new Error('expected the file to be refused');
}

describe('parseHtpasswd', () => {
  it('reads bcrypt entries ($2a$, $2b$, $2y$), skipping comments, blank lines and CRLF endings', () => {
    const users = parseHtpasswd(`# mirror users\r\n\r\nalice:${alice}\r\n  \nbob:${bob}\ncarol:${alice.replace('$2b$', '$2a$')}\n`);
    expect([...users.keys()]).toEqual(['alice', 'bob', 'carol']);
    expect(users.get('bob')).toBe(bob);
  });

  it('refuses other hash formats, naming the line and the user but not the hash', () => {
    const text = [`alice:${alice}`, '# comment', 'md5:$apr1$abcdefgh$0123456789abcdefghijkl', 'sha:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=', 'plain:secret'].join('\n');
    const problems = problemsOf(text);
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^line 3 \(user "md5"\): an Apache MD5 \(\$apr1\$\) hash; only bcrypt/);
    expect(problems[1]).toMatch(/^line 4 \(user "sha"\): a SHA-1/);
    expect(problems[2]).toMatch(/^line 5 \(user "plain"\)/);
    expect(problems.join('\n')).not.toContain('secret');
    expect(problems.join('\n')).not.toContain('$apr1$abcdefgh');
  });

  it('refuses lines without a user, bad user names, truncated bcrypt hashes and duplicate users', () => {
    expect(problemsOf(`:${alice}`)[0]).toMatch(/^line 1: expected "user:bcrypt-hash"/);
    expect(problemsOf('no colon here')[0]).toMatch(/^line 1:/);
    expect(problemsOf(`a b:${alice}`)[0]).toMatch(/^line 1: user name/);
    expect(problemsOf(`x:${alice.slice(0, -3)}`)[0]).toMatch(/^line 1 \(user "x"\): a malformed bcrypt hash/);
    expect(problemsOf(`x:${alice}\nx:${bob}`)[0]).toMatch(/^line 2: user "x" appears twice/);
  });

  it('puts every problem in the error message', () => {
    expect(() => parseHtpasswd('a:plain\n\nb:{SHA}x', 'f')).toThrow(/^f: line 1 .*; line 3 /);
  });
});
