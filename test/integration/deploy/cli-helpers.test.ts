import { chmod, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runHtpasswdAdd, runHtpasswdDelete, type HtpasswdIo } from '../../../src/deploy/htpasswd-command.js';
import { HtpasswdFile } from '../../../src/mirror/auth/htpasswd-file.js';
import { configSchema } from '../../../src/config/schema.js';
import { captureLogs } from '../../helpers/log-capture.js';
import { makeTempDir, useCleanup } from '../../helpers/tmp.js';
import { runCliToEnd } from '../../helpers/cli-process.js';


const cli = runCliToEnd;

/** In-process: stdin is a pipe carrying `input`. */
function io(input: string): HtpasswdIo {
  const stdin = new PassThrough();
  stdin.end(input);
  return { stdin, prompt: new PassThrough(), stderr: () => undefined };
}

describe('mirrorgate htpasswd / pull-secret / hosts-toml', () => {
  const cleanup = useCleanup();

  it('htpasswd add (the CLI) writes a file the mirror loads and verifies; updating keeps other users, comments and the mode', async () => {
    const dir = cleanup.add(await makeTempDir('mirrorgate-htpasswd-'));
    const file = path.join(dir.path, 'htpasswd');
    await writeFile(file, '# mirror users\n', { mode: 0o640 });
    await chmod(file, 0o640);
    await runHtpasswdAdd('alice', { file, cost: 4 }, io('first\n'));
    await runHtpasswdAdd('bob', { file, cost: 4 }, io('bobpw'));
    const change = await cli(['htpasswd', 'add', 'alice', '--file', file], 'second\n');
    expect(change.code, change.stderr).toBe(0);
    expect(change.stdout).toBe('');

    const text = await readFile(file, 'utf8');
    expect(text.split('\n')[0]).toBe('# mirror users');
    expect((await stat(file)).mode & 0o777).toBe(0o640);
    expect(await readdir(dir.path)).toEqual(['htpasswd']); // no temp file left behind
    const users = new HtpasswdFile(file, { logger: captureLogs().logger });
    try {
      expect(users.size).toBe(2);
      const alice = users.hashOf('alice')!;
      expect(alice).toMatch(/^\$2b\$10\$/); // the default cost
      expect(await bcrypt.compare('second', alice)).toBe(true);
      expect(await bcrypt.compare('first', alice)).toBe(false);
      expect(await bcrypt.compare('bobpw', users.hashOf('bob')!)).toBe(true);
    } finally {
      users.close();
    }
    expect(await runHtpasswdDelete('bob', { file }, io(''))).toBe(true);
    expect(await readFile(file, 'utf8')).not.toMatch(/^bob:/m);
    expect(await runHtpasswdDelete('bob', { file }, io(''))).toBe(false);
  });

  it('htpasswd add creates a new file readable by its owner only, and refuses bad names and empty passwords', async () => {
    const dir = cleanup.add(await makeTempDir('mirrorgate-htpasswd-'));
    const file = path.join(dir.path, 'new');
    const bad = await cli(['htpasswd', 'add', 'a:b', '--file', file], 'pw');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/invalid user name/);
    await expect(runHtpasswdAdd('carol', { file, cost: 4 }, io('\n'))).rejects.toThrow(/empty password/);
    // bcrypt would silently use only the first 72 bytes: refused, with the limit in the message.
    await expect(runHtpasswdAdd('carol', { file, cost: 4 }, io(`${'é'.repeat(36)}x\n`))).rejects.toThrow(/73 bytes.*at most 72/);
    const long = await cli(['htpasswd', 'add', 'carol', '--file', file], `${'a'.repeat(100)}\n`);
    expect(long.code).toBe(1);
    expect(long.stderr).toMatch(/100 bytes.*at most 72/);
    await expect(stat(file)).rejects.toThrow(/ENOENT/);
    await runHtpasswdAdd('carol', { file, cost: 4 }, io(`${'é'.repeat(36)}\n`)); // exactly 72 bytes is fine
    await rm(file);
    await runHtpasswdAdd('carol', { file, cost: 4 }, io('pw'));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('htpasswd add refuses to touch a file the mirror would not load', async () => {
    const dir = cleanup.add(await makeTempDir('mirrorgate-htpasswd-'));
    const file = path.join(dir.path, 'htpasswd');
    const apr1 = 'old:$apr1$abcdefgh$0123456789abcdefghijkl\n';
    await writeFile(file, apr1);
    await expect(runHtpasswdAdd('alice', { file, cost: 4 }, io('pw'))).rejects.toThrow(/only bcrypt/);
    expect(await readFile(file, 'utf8')).toBe(apr1);
  });

  it('pull-secret prints a dockerconfigjson Secret named and placed as the webhook expects', async () => {
    const defaults = configSchema.parse({}).webhook;
    const r = await cli(['pull-secret', '--user', 'alice', '--password-stdin'], 's3cret\n');
    expect(r.code, r.stderr).toBe(0);
    const secret = parse(r.stdout) as { type: string; metadata: { name: string; namespace: string }; data: Record<string, string> };
    expect(secret.type).toBe('kubernetes.io/dockerconfigjson');
    expect(secret.metadata.name).toBe(defaults.pullSecretSourceName);
    expect(secret.metadata.namespace).toBe('mirrorgate');
    const cfg = JSON.parse(Buffer.from(secret.data['.dockerconfigjson']!, 'base64').toString('utf8')) as { auths: Record<string, { auth: string }> };
    expect(Buffer.from(cfg.auths[defaults.mirrorHost]!.auth, 'base64').toString()).toBe('alice:s3cret');

    const named = await cli(['pull-secret', '--user', 'u', '--server', 'reg.example.com:5000', '--name', 'other', '--namespace', 'infra'], 'pw');
    expect(named.code, named.stderr).toBe(0);
    const s2 = parse(named.stdout) as { metadata: { name: string; namespace: string }; data: Record<string, string> };
    expect(s2.metadata).toMatchObject({ name: 'other', namespace: 'infra' });
    expect(Buffer.from(s2.data['.dockerconfigjson']!, 'base64').toString()).toContain('"reg.example.com:5000"');
  });

  it('hosts-toml --out writes <dir>/<registry>/hosts.toml for each upstream of the config file', async () => {
    const dir = cleanup.add(await makeTempDir('mirrorgate-hosts-'));
    const config = path.join(dir.path, 'config.yaml');
    await writeFile(config, 'upstreams:\n  docker.io: { url: "https://registry-1.docker.io" }\n  quay.io: { url: "https://quay.io" }\n');
    const out = path.join(dir.path, 'certs.d');
    const r = await cli(['hosts-toml', '--config', config, '--mirror', 'mirror.example.com', '--ca', '/etc/containerd/certs.d/mirror.example.com/ca.crt', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(path.join(out, 'docker.io', 'hosts.toml'), 'utf8')).toBe(
      'server = "https://registry-1.docker.io"\n\n[host."https://mirror.example.com"]\n  capabilities = ["pull", "resolve"]\n  ca = "/etc/containerd/certs.d/mirror.example.com/ca.crt"\n',
    );
    expect(await readFile(path.join(out, 'quay.io', 'hosts.toml'), 'utf8')).toMatch(/^server = "https:\/\/quay.io"\n/);
    const printed = await cli(['hosts-toml', '--config', config, '--mirror', 'mirror.example.com']);
    expect(printed.stdout.match(/^# \/etc\/containerd\/certs.d\/[^/]+\/hosts.toml$/gm)).toEqual(['# /etc/containerd/certs.d/docker.io/hosts.toml', '# /etc/containerd/certs.d/quay.io/hosts.toml']);
  });
});
