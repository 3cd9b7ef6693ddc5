import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readPassword } from '../../../src/deploy/read-password.js';

/** A stand-in terminal: records raw-mode switches, nothing echoed but the prompts. */
function fakeTty(): { stdin: PassThrough & { isTTY: boolean; setRawMode: (m: boolean) => void; modes: boolean[] }; prompt: PassThrough; shown: () => string } {
  const stdin = Object.assign(new PassThrough(), { isTTY: true, modes: [] as boolean[], setRawMode(m: boolean) { stdin.modes.push(m); } });
  const prompt = new PassThrough();
  const chunks: Buffer[] = [];
  prompt.on('data', (c: Buffer) => chunks.push(c));
  return { stdin, prompt, shown: () => Buffer.concat(chunks).toString('utf8') };
}

describe('reading a password', () => {
  it('takes all of stdin when it is not a terminal, minus one trailing newline', async () => {
    const stdin = new PassThrough();
    stdin.end('pa ss\n');
    await expect(readPassword({ stdin, prompt: new PassThrough() })).resolves.toBe('pa ss');
  });

  it('refuses an empty password', async () => {
    const stdin = new PassThrough();
    stdin.end('\n');
    await expect(readPassword({ stdin, prompt: new PassThrough() })).rejects.toThrow(/empty password/);
  });

  it('prompts twice on a terminal without echo, with backspace, and restores the terminal', async () => {
    const tty = fakeTty();
    const result = readPassword(tty);
    tty.stdin.write('secx\u007ft\r');
    await new Promise((r) => setImmediate(r));
    tty.stdin.write('sect\r');
    await expect(result).resolves.toBe('sect');
    expect(tty.shown()).toBe('Password: \nRetype password: \n');
    expect(tty.stdin.modes).toEqual([true, false, true, false]);
  });

  it('fails when the two entries differ, and on Ctrl-C', async () => {
    const tty = fakeTty();
    const mismatch = readPassword(tty);
    tty.stdin.write('one\r');
    await new Promise((r) => setImmediate(r));
    tty.stdin.write('two\r');
    await expect(mismatch).rejects.toThrow(/do not match/);
    const tty2 = fakeTty();
    const aborted = readPassword(tty2);
    tty2.stdin.write('ab\u0003');
    await expect(aborted).rejects.toThrow(/aborted/);
    expect(tty2.stdin.modes).toEqual([true, false]);
  });
});
