import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { isConsistent } from '../../../src/webhook/certs.js';
import { registerWebhookCommands, runCerts, runRewrite } from '../../../src/webhook/command.js';

const D64 = 'a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4';
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'mirrorgate-cli-'));
  dirs.push(d);
  return d;
}

function capture() {
  const out = { stdout: '', stderr: '' };
  return { out, io: { stdout: (t: string) => void (out.stdout += t), stderr: (t: string) => void (out.stderr += t) } };
}

describe('mirrorgate rewrite', () => {
  it('prints the default rewrite of nginx', () => {
    const { out, io } = capture();
    expect(runRewrite(['nginx'], {}, io, {})).toBe(0);
    expect(out.stdout).toBe('registry.krisalee.dev.joona.fr/library/nginx:latest\n');
  });

  it('honours --mirror and routes ghcr.io by digest', () => {
    const { out, io } = capture();
    expect(runRewrite([`ghcr.io/a/b@sha256:${D64}`], { mirror: 'm.example' }, io, {})).toBe(0);
    expect(out.stdout).toBe(`m.example/ghcr.io/a/b@sha256:${D64}\n`);
  });

  it('prints one JSON object per line in order and exits 1 when any image is invalid', () => {
    const { out, io } = capture();
    expect(runRewrite(['nginx', 'Bad', 'localhost:5000/x'], { json: true }, io, {})).toBe(1);
    expect(out.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      { input: 'nginx', output: 'registry.krisalee.dev.joona.fr/library/nginx:latest', changed: true, reason: 'rewritten' },
      { input: 'Bad', output: 'Bad', changed: false, reason: 'invalid' },
      { input: 'localhost:5000/x', output: 'localhost:5000/x', changed: false, reason: 'not-upstream' },
    ]);
  });

  it('reads --config and the environment', () => {
    const dir = tmp();
    const file = path.join(dir, 'c.yaml');
    writeFileSync(file, 'webhook:\n  registries: [docker.io]\n  exclude: ["docker.io/library/redis"]\n');
    const { out, io } = capture();
    expect(runRewrite(['ghcr.io/a/b', 'redis', 'nginx'], { config: file }, io, { MIRRORGATE_MIRROR_HOST: 'env.example' })).toBe(0);
    expect(out.stdout).toBe('ghcr.io/a/b\nredis\nenv.example/library/nginx:latest\n');
  });

  it('is registered on the program with its options', () => {
    const program = new Command();
    registerWebhookCommands(program);
    expect(program.commands.map((c) => c.name()).sort()).toEqual(['certs', 'rewrite', 'webhook']);
    const webhook = program.commands.find((c) => c.name() === 'webhook')!;
    expect(webhook.options.map((o) => o.long)).toEqual(['--config', '--listen', '--tls-cert', '--tls-key', '--mirror', '--no-mirror-probe']);
  });
});

describe('mirrorgate certs', () => {
  it('writes a CA and a serving certificate that belong together, keys private', () => {
    const dir = path.join(tmp(), 'certs');
    const { io } = capture();
    runCerts({ out: dir, service: 'mirrorgate-webhook', namespace: 'mirrorgate', days: 30 }, io);
    const read = (n: string) => readFileSync(path.join(dir, n), 'utf8');
    expect(isConsistent({ caCert: read('ca.crt'), caKey: read('ca.key'), cert: read('tls.crt'), key: read('tls.key') })).toBe(true);
    expect(statSync(path.join(dir, 'tls.key')).mode & 0o077).toBe(0);
  });
});
