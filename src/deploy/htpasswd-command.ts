import { readFile, stat } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import { InvalidArgumentError, type Command } from 'commander';
import { BCRYPT_MAX_PASSWORD_BYTES, parseHtpasswd } from '../mirror/auth/htpasswd.js';
import { removeUser, upsertUser, validUserName } from './htpasswd-edit.js';
import { readPassword, type PasswordInput } from './read-password.js';
import { writeFileAtomically } from './write-atomic.js';

/** `mirrorgate htpasswd add|delete USER`: the mirror's htpasswd file (bcrypt entries), edited atomically. */

export const DEFAULT_BCRYPT_COST = 10;
export interface HtpasswdIo extends PasswordInput {
  stderr: (text: string) => void;
}

async function readExisting(file: string): Promise<{ text: string; mode: number | undefined }> {
  try {
    const [text, st] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
    return { text, mode: st.mode & 0o777 };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { text: '', mode: undefined };
    throw err;
  }
}

/** Checked with the mirror's own parser first: never leave a file the mirror would refuse. */
async function writeBack(file: string, text: string, mode: number | undefined): Promise<void> {
  parseHtpasswd(text, file);
  // 0600 for a new file: it holds password hashes.
  await writeFileAtomically(file, text, mode ?? 0o600);
}

export async function runHtpasswdAdd(user: string, opts: { file: string; cost: number }, io: HtpasswdIo): Promise<void> {
  if (!validUserName(user)) throw new Error(`invalid user name ${JSON.stringify(user)}: 1-255 printable ASCII characters, no spaces or ':'`);
  const password = await readPassword(io);
  // bcrypt would silently use only the first 72 bytes, and the mirror refuses longer passwords at login.
  const bytes = Buffer.byteLength(password, 'utf8');
  if (bytes > BCRYPT_MAX_PASSWORD_BYTES) {
    throw new Error(`the password is ${bytes} bytes long; bcrypt passwords may be at most ${BCRYPT_MAX_PASSWORD_BYTES} bytes (UTF-8): choose a shorter one`);
  }
  const hash = await bcrypt.hash(password, opts.cost);
  const { text, mode } = await readExisting(opts.file);
  const next = upsertUser(text, user, hash);
  await writeBack(opts.file, next.text, mode);
  io.stderr(`${next.replaced ? 'updated' : 'added'} user ${user} in ${opts.file}\n`);
}

export async function runHtpasswdDelete(user: string, opts: { file: string }, io: Pick<HtpasswdIo, 'stderr'>): Promise<boolean> {
  const { text, mode } = await readExisting(opts.file);
  const next = removeUser(text, user);
  if (!next.removed) {
    io.stderr(`mirrorgate: no user ${JSON.stringify(user)} in ${opts.file}\n`);
    return false;
  }
  await writeBack(opts.file, next.text, mode);
  io.stderr(`deleted user ${user} from ${opts.file}\n`);
  return true;
}

function parseCost(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 4 || n > 31) throw new InvalidArgumentError('a bcrypt cost is an integer from 4 to 31');
  return n;
}

export function registerHtpasswdCommand(program: Command): void {
  const htpasswd = program.command('htpasswd').description("edit the mirror's htpasswd file (bcrypt entries; mirror.auth.htpasswd)");
  const io: HtpasswdIo = { stdin: process.stdin, prompt: process.stderr, stderr: (t) => process.stderr.write(t) };
  htpasswd
    .command('add')
    .description('add a user or change its password; the password is read from stdin, or prompted for without echo on a terminal')
    .argument('<user>', 'user name (no spaces or ":")')
    .option('--file <file>', 'htpasswd file, created if missing', 'htpasswd')
    .option('--cost <n>', 'bcrypt cost (4-31)', parseCost, DEFAULT_BCRYPT_COST)
    .action(async (user: string, opts: { file: string; cost: number }) => {
      await runHtpasswdAdd(user, opts, io);
    });
  htpasswd
    .command('delete')
    .description('remove a user')
    .argument('<user>', 'user name')
    .option('--file <file>', 'htpasswd file', 'htpasswd')
    .action(async (user: string, opts: { file: string }) => {
      if (!(await runHtpasswdDelete(user, opts, io))) process.exitCode = 1;
    });
}
