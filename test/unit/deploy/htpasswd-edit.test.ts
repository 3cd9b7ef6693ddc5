import { describe, expect, it } from 'vitest';
import { removeUser, upsertUser, validUserName } from '../../../src/deploy/htpasswd-edit.js';
import { parseHtpasswd } from '../../../src/mirror/auth/htpasswd.js';

const HASH_A = `$2b$04$${'a'.repeat(53)}`;
const HASH_B = `$2y$10$${'b'.repeat(53)}`;

describe('htpasswd editing', () => {
  it('appends a new user to an empty file', () => {
    const r = upsertUser('', 'alice', HASH_A);
    expect(r).toEqual({ text: `alice:${HASH_A}\n`, replaced: false });
    expect(parseHtpasswd(r.text).get('alice')).toBe(HASH_A);
  });

  it('replaces an existing user in place and keeps comments, blank lines and other users', () => {
    const before = `# team\nbob:${HASH_B}\n\nalice:${HASH_B}\n# end\n`;
    const r = upsertUser(before, 'alice', HASH_A);
    expect(r.replaced).toBe(true);
    expect(r.text).toBe(`# team\nbob:${HASH_B}\n\nalice:${HASH_A}\n# end\n`);
    const users = parseHtpasswd(r.text);
    expect([...users.keys()]).toEqual(['bob', 'alice']);
  });

  it('reads CRLF files and a file without a final newline', () => {
    expect(upsertUser(`bob:${HASH_B}\r\n`, 'alice', HASH_A).text).toBe(`bob:${HASH_B}\nalice:${HASH_A}\n`);
    expect(upsertUser(`bob:${HASH_B}`, 'bob', HASH_A).text).toBe(`bob:${HASH_A}\n`);
  });

  it('does not take a commented-out line for the user', () => {
    expect(upsertUser(`#alice:${HASH_B}\n`, 'alice', HASH_A).text).toBe(`#alice:${HASH_B}\nalice:${HASH_A}\n`);
  });

  it('refuses user names the mirror would not read back', () => {
    for (const bad of ['', 'a:b', 'a b', 'tab\there', 'ü', 'x'.repeat(256)]) {
      expect(validUserName(bad), bad).toBe(false);
      expect(() => upsertUser('', bad, HASH_A)).toThrow(/invalid user name/);
    }
    for (const good of ['alice', 'ci-bot@example.com', 'a.b_c~!', 'x'.repeat(255)]) expect(validUserName(good), good).toBe(true);
  });

  it('removes a user and reports whether it was there', () => {
    const text = `# c\nbob:${HASH_B}\nalice:${HASH_A}\n`;
    expect(removeUser(text, 'bob')).toEqual({ text: `# c\nalice:${HASH_A}\n`, removed: true });
    expect(removeUser(text, 'carol')).toEqual({ text, removed: false });
    expect(removeUser(`bob:${HASH_B}\n`, 'bob')).toEqual({ text: '', removed: true });
  });
});
