import type { Readable, Writable } from 'node:stream';

/**
 * Reads a password: the whole of stdin when it is not a terminal (one trailing newline dropped), else a prompt
 * on the terminal without echo. Streams are passed in so tests can drive both paths.
 */
export interface PasswordInput {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  /** Where the prompt goes (stderr, so stdout stays clean for pipes). */
  prompt: Writable;
}

const MAX_PASSWORD_BYTES = 4096;

export async function readPasswordFromStream(stdin: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buf.length;
    if (size > MAX_PASSWORD_BYTES) throw new Error(`the password on stdin is longer than ${MAX_PASSWORD_BYTES} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** One line from a raw-mode terminal, echoing nothing. Ctrl-C and Ctrl-D abort. */
function promptHidden(input: PasswordInput, question: string): Promise<string> {
  const { stdin, prompt } = input;
  prompt.write(question);
  stdin.setRawMode?.(true);
  stdin.resume();
  return new Promise<string>((resolve, reject) => {
    let value = '';
    const done = (err?: Error): void => {
      stdin.off('data', onData);
      stdin.setRawMode?.(false);
      stdin.pause();
      prompt.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (data: Buffer | string): void => {
      for (const ch of String(data)) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003' || ch === '\u0004') return done(new Error('aborted'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

export async function readPassword(input: PasswordInput): Promise<string> {
  let password: string;
  if (!input.stdin.isTTY) {
    password = await readPasswordFromStream(input.stdin);
  } else {
    password = await promptHidden(input, 'Password: ');
    const again = await promptHidden(input, 'Retype password: ');
    if (again !== password) throw new Error('the passwords do not match');
  }
  if (password === '') throw new Error('empty password');
  return password;
}
