import bcrypt from 'bcryptjs';
import { writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { HtpasswdFile } from '../../../../src/mirror/auth/htpasswd-file.js';
import { makeTempDir, useCleanup } from '../../../helpers/tmp.js';

const cleanup = useCleanup();

function capture() {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write(chunk: Buffer, _e, cb) { lines.push(chunk.toString()); cb(); } }));
  return { logger, lines };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(20);
  }
}

describe('HtpasswdFile', () => {
  it('refuses to start with a non-bcrypt file, naming the line', async () => {
    const dir = cleanup.add(await makeTempDir());
    const file = join(dir.path, 'htpasswd');
    writeFileSync(file, `# users\nalice:${bcrypt.hashSync('a', 4)}\nbob:$apr1$xyz$abcdefghijklmnopqrstuv\n`);
    expect(() => new HtpasswdFile(file, capture())).toThrow(/mirror\.auth\.htpasswd: .*line 3 \(user "bob"\): an Apache MD5/);
    expect(() => new HtpasswdFile(join(dir.path, 'missing'), capture())).toThrow(/cannot read/);
  });

  it('picks up a user added while running, and keeps the last good users when the file breaks', async () => {
    const dir = cleanup.add(await makeTempDir());
    const file = join(dir.path, 'htpasswd');
    writeFileSync(file, `alice:${bcrypt.hashSync('a', 4)}\n`);
    const { logger, lines } = capture();
    const users = new HtpasswdFile(file, { logger });
    cleanup.add(() => users.close());
    let changes = 0;
    users.onChange(() => changes++);
    users.watch(100);

    // Atomic replace (write then rename), as editors and Kubernetes do.
    writeFileSync(`${file}.new`, `alice:${bcrypt.hashSync('a', 4)}\nbob:${bcrypt.hashSync('b', 4)}\n`);
    renameSync(`${file}.new`, file);
    await until(() => users.hashOf('bob') !== undefined);
    expect(changes).toBe(1);

    writeFileSync(file, `alice:${bcrypt.hashSync('a', 4)}\ncarol:plaintext-password\n`);
    await until(() => lines.some((l) => l.includes('htpasswd reload failed')));
    expect(users.hashOf('bob')).toBeDefined();
    expect(users.hashOf('carol')).toBeUndefined();
    expect(changes).toBe(1);
    const failure = lines.find((l) => l.includes('htpasswd reload failed'))!;
    expect(failure).toContain('line 2 (user \\"carol\\")');
    expect(lines.join('')).not.toContain('plaintext-password');

    users.close();
  });

  it('reloads on demand and reports whether anything changed', async () => {
    const dir = cleanup.add(await makeTempDir());
    const file = join(dir.path, 'htpasswd');
    writeFileSync(file, `alice:${bcrypt.hashSync('a', 4)}\n`);
    const users = new HtpasswdFile(file, capture());
    expect(users.reload()).toBe(false);
    writeFileSync(file, `alice:${bcrypt.hashSync('a', 4)}\n`);
    expect(users.reload()).toBe(true);
    expect(users.size).toBe(1);
  });

  it('makes a dummy hash of the cost most users have, again at each reload', async () => {
    const dir = cleanup.add(await makeTempDir());
    const file = join(dir.path, 'htpasswd');
    writeFileSync(file, `a:${bcrypt.hashSync('a', 4)}\nb:${bcrypt.hashSync('b', 4)}\nc:${bcrypt.hashSync('c', 5)}\n`);
    const users = new HtpasswdFile(file, capture());
    try {
      const first = users.dummyHash();
      expect(bcrypt.getRounds(first)).toBe(4);
      expect(users.dummyHash()).toBe(first);
      writeFileSync(file, `a:${bcrypt.hashSync('a', 6)}\n`);
      expect(users.reload()).toBe(true);
      expect(bcrypt.getRounds(users.dummyHash())).toBe(6);
    } finally {
      users.close();
    }
  });
});
