import bcrypt from 'bcryptjs';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PasswordVerifier } from '../../../src/mirror/auth/authenticator.js';
import { BcryptPool } from '../../../src/mirror/auth/bcrypt-pool.js';
import { silentLogger } from '../../../src/common/logger.js';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { MediaTypes, pushImage, type PushedImage } from '../../helpers/images.js';
import { captureLogs } from '../../helpers/log-capture.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { readDirImage, skopeoCopy } from '../../helpers/skopeo.js';
import { testCa, writeCertDir, writeServingCert, type TestCa } from '../../helpers/test-certs.js';
import { Cleanup, makeTempDir } from '../../helpers/tmp.js';

const PASSWORD = 'Corr3ct-Horse:Battery!';
const DAVE_PASSWORD = 'dave-Staple-42';
/** Exactly bcrypt's 72-byte limit (36 two-byte characters). */
const LONG_PASSWORD = 'é'.repeat(36);
const cleanup = new Cleanup();
const logs = captureLogs();
let hub: HubFront;
let mirror: TestMirror;
let image: PushedImage;
let ca: TestCa;
let certDir: string;
let tlsDir: string;
let htpasswd: string;
let agent: Agent;
let port: number;
const verifications: string[] = [];
/** The mirror's own verifier (bcrypt on worker threads), counted. */
const pool = new BcryptPool({ threads: 2, maxQueued: 64, queueTimeoutMs: 10_000, logger: silentLogger() });
cleanup.add(() => pool.close());
const countingVerifier: PasswordVerifier = (password, hash) => {
  verifications.push(hash);
  return pool.verify(password, hash);
};

const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
const line = (user: string, pass: string, cost = 10): string => `${user}:${bcrypt.hashSync(pass, cost)}\n`;

async function call(path: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') {
  const res = await request(`${mirror.url}${path}`, { method, headers, dispatcher: agent });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) as { errors: { code: string; message: string }[] } };
}

function writeAtomically(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

async function until(cond: () => Promise<boolean> | boolean, what: string, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function peerFingerprint(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: ca.cert }, () => {
      const fp = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
      socket.end();
      resolve(fp);
    });
    socket.once('error', reject);
  });
}

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  image = await pushImage(registry.url, 'library/alpine', '3.20', { layers: [2048, 40_000], format: 'docker', seed: 'auth-alpine' });
  hub = cleanup.add(await startHubFront({ target: registry.url }));
  const dir = cleanup.add(await makeTempDir('mirrorgate-auth-'));
  ca = testCa();
  certDir = await writeCertDir(cleanup.add(await makeTempDir('mirrorgate-certdir-')).path, ca);
  tlsDir = dir.path;
  const serving = await writeServingCert(tlsDir, ca);
  htpasswd = join(dir.path, 'htpasswd');
  writeFileSync(htpasswd, `# mirror users\n${line('alice', PASSWORD)}${line('dave', DAVE_PASSWORD)}${line('long', LONG_PASSWORD)}`);
  agent = new Agent({ connect: { ca: ca.cert }, connections: 64 });
  cleanup.add(() => agent.close());
  mirror = cleanup.add(
    await startMirror({
      upstreams: { 'docker.io': hub.url },
      logger: logs.logger,
      config: { mirror: { tls: { cert: serving.cert, key: serving.key }, auth: { htpasswd, realm: 'mirrorgate test' }, watchInterval: '100ms' } },
      deps: { passwordVerifier: countingVerifier },
    }),
  );
  expect(mirror.url).toMatch(/^https:\/\//);
  port = Number(new URL(mirror.url).port);
}, 120_000);

afterAll(() => cleanup.run());

describe('mirror authentication (htpasswd, over TLS)', () => {
  it('answers 401 with a Basic challenge and the spec envelope on /v2/ and every repository endpoint; health and metrics stay open', async () => {
    for (const path of ['/v2/', '/v2/_catalog', '/v2/library/alpine/manifests/3.20', `/v2/library/alpine/blobs/${image.config.digest}`, '/v2/library/alpine/tags/list']) {
      const res = await call(path);
      expect(res.status, path).toBe(401);
      expect(res.headers['www-authenticate'], path).toBe('Basic realm="mirrorgate test"');
      expect(res.json().errors[0]!.code, path).toBe('UNAUTHORIZED');
    }
    // Spellings that might slip past a prefix check still never answer without credentials.
    for (const path of ['/V2/', '/v2', '/v2//', '/v2/./library/alpine/tags/list', '/v2/%2e%2e/v2/', '/healthz/../v2/', '/v2/library/alpine/manifests/3.20?ns=docker.io']) {
      const res = await request(`${mirror.url}${path}`, { dispatcher: agent });
      await res.body.dump();
      expect([401, 404], path).toContain(res.statusCode);
    }
    const head = await call('/v2/library/alpine/manifests/3.20', {}, 'HEAD');
    expect(head.status).toBe(401);
    expect((await call('/healthz')).status).toBe(200);
    expect((await call('/readyz')).status).toBe(200);
    expect((await call('/metrics')).status).toBe(200);
    expect(hub.count()).toBe(0);
  });

  it('refuses a wrong password, an unknown user and malformed headers alike', async () => {
    const cases: Record<string, string> = {
      'wrong password': basic('alice', 'guess'),
      'unknown user': basic('mallory', PASSWORD),
      'user in another case': basic('Alice', PASSWORD),
      'no colon': `Basic ${Buffer.from('alice').toString('base64')}`,
      'not base64': 'Basic %%%',
      'another scheme': 'Digest username="alice"',
      'bearer without the token flow': 'Bearer abc',
      'scheme only': 'Basic',
    };
    for (const [name, header] of Object.entries(cases)) {
      const res = await call('/v2/', { authorization: header });
      expect(res.status, name).toBe(401);
      expect(res.headers['www-authenticate'], name).toBe('Basic realm="mirrorgate test"');
      expect(res.json().errors[0]!.code, name).toBe('UNAUTHORIZED');
      expect(res.text, name).not.toContain(PASSWORD);
    }
    expect((await call('/v2/', { authorization: basic('alice', PASSWORD) })).status).toBe(200);
  });

  it('never lets a password longer than 72 bytes match by its first 72 bytes, and runs no bcrypt for it', async () => {
    expect(Buffer.byteLength(LONG_PASSWORD)).toBe(72);
    expect((await call('/v2/', { authorization: basic('long', LONG_PASSWORD) })).status).toBe(200);
    const before = verifications.length;
    for (const extra of ['x', 'é', LONG_PASSWORD]) {
      const res = await call('/v2/', { authorization: basic('long', `${LONG_PASSWORD}${extra}`) });
      expect(res.status, extra).toBe(401);
      expect(res.json().errors[0]!.code).toBe('UNAUTHORIZED');
    }
    // An unknown user with a long password is refused the same way, without bcrypt either.
    expect((await call('/v2/', { authorization: basic('nobody', `${LONG_PASSWORD}x`) })).status).toBe(401);
    expect(verifications.length).toBe(before);
  });

  it('lets skopeo pull over verified TLS with --src-creds, and refuses it without', async () => {
    const out = cleanup.add(await makeTempDir('mirrorgate-pull-'));
    await skopeoCopy(`docker://${mirror.host}/library/alpine:3.20`, `dir:${out.path}`, {
      srcCreds: `alice:${PASSWORD}`,
      srcTlsVerify: true,
      srcCertDir: certDir,
      throwOnError: true,
    });
    const pulled = await readDirImage(out.path);
    expect(pulled.manifestDigest).toBe(image.digest);

    const denied = cleanup.add(await makeTempDir('mirrorgate-pull-'));
    const res = await skopeoCopy(`docker://${mirror.host}/library/alpine:3.20`, `dir:${denied.path}`, { srcTlsVerify: true, srcCertDir: certDir });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/401|unauthorized|authentication required/i);

    const wrong = await skopeoCopy(`docker://${mirror.host}/library/alpine:3.20`, `dir:${denied.path}`, { srcCreds: 'alice:nope', srcTlsVerify: true, srcCertDir: certDir });
    expect(wrong.code).not.toBe(0);
  }, 90_000);

  it('makes 40 simultaneous requests with the same credentials pay bcrypt once', async () => {
    await call('/v2/library/alpine/manifests/3.20', { authorization: basic('alice', PASSWORD), accept: MediaTypes.dockerManifest });
    verifications.length = 0;
    const auth = basic('dave', DAVE_PASSWORD);
    const answers = await Promise.all(
      Array.from({ length: 40 }, () => call('/v2/library/alpine/manifests/3.20', { authorization: auth, accept: MediaTypes.dockerManifest }, 'HEAD')),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(40).fill(200));
    expect(verifications).toHaveLength(1);
    // And a wrong password is checked every time: failures are not cached.
    for (let i = 0; i < 2; i++) expect((await call('/v2/', { authorization: basic('dave', 'wrong') })).status).toBe(401);
    expect(verifications).toHaveLength(3);
  });

  it('picks up a user added while running, and keeps the last good users when the file breaks', async () => {
    const bob = basic('bob', 'bob-secret-9');
    expect((await call('/v2/', { authorization: bob })).status).toBe(401);
    const good = `${line('alice', PASSWORD)}${line('dave', DAVE_PASSWORD)}${line('bob', 'bob-secret-9', 4)}`;
    writeAtomically(htpasswd, good);
    await until(async () => (await call('/v2/', { authorization: bob })).status === 200, 'bob to be accepted');

    writeAtomically(htpasswd, `${good}eve:$apr1$abcdefgh$0123456789abcdefghijkl\n`);
    await until(() => logs.text().includes('htpasswd reload failed'), 'the failed reload to be logged');
    const failure = logs.lines().find((l) => l.msg === 'htpasswd reload failed; keeping the previous users')!;
    expect(String(failure.reason)).toMatch(/line 4 \(user "eve"\): an Apache MD5/);
    expect((await call('/v2/', { authorization: bob })).status).toBe(200);
    expect((await call('/v2/', { authorization: basic('alice', PASSWORD) })).status).toBe(200);
    writeAtomically(htpasswd, good);
  });

  it('serves a replaced certificate to new connections without a restart, and only TLS 1.2+', async () => {
    const before = await peerFingerprint();
    const next = await writeServingCert(tlsDir, ca);
    expect(next.fingerprint).not.toBe(before);
    await until(async () => (await peerFingerprint()) === next.fingerprint, 'the new certificate');
    expect((await call('/v2/', { authorization: basic('alice', PASSWORD) })).status).toBe(200);

    // A broken pair (certificate without its key) keeps the current one.
    writeFileSync(join(tlsDir, 'tls.crt'), 'not a certificate');
    await until(() => logs.text().includes('certificate reload failed'), 'the failed certificate reload to be logged');
    expect(await peerFingerprint()).toBe(next.fingerprint);

    const old = await new Promise<string>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca: ca.cert, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }, () => {
        s.end();
        resolve('connected');
      });
      s.once('error', (err) => resolve(err.message));
    });
    expect(old).not.toBe('connected');
  });

  it('never logs passwords, Authorization headers or credentials', () => {
    const text = logs.text();
    expect(text.length).toBeGreaterThan(1000);
    expect(logs.lines().some((l) => l.msg === 'request' && l.status === 401)).toBe(true);
    for (const secret of [PASSWORD, DAVE_PASSWORD, 'bob-secret-9', Buffer.from(`alice:${PASSWORD}`).toString('base64'), basic('dave', DAVE_PASSWORD)]) {
      expect(text).not.toContain(secret);
    }
    expect(text).not.toMatch(/Basic [A-Za-z0-9+/=]{8,}/);
    expect(text.toLowerCase()).not.toContain('"authorization"');
  });
});

describe('unknown users', () => {
  it('are checked against a dummy hash of the cost most users in the file have, also after a reload', async () => {
    const dir = cleanup.add(await makeTempDir('mirrorgate-dummy-'));
    const file = join(dir.path, 'htpasswd');
    writeFileSync(file, `${line('bob', 'bob-pw', 4)}${line('carol', 'carol-pw', 4)}${line('erin', 'erin-pw', 5)}`);
    const seen: string[] = [];
    const verify: PasswordVerifier = (password, hash) => {
      seen.push(hash);
      return pool.verify(password, hash);
    };
    const m = cleanup.add(await startMirror({ upstreams: { 'docker.io': hub.url }, config: { mirror: { auth: { htpasswd: file }, watchInterval: '100ms' } }, deps: { passwordVerifier: verify } }));
    const status = async (user: string, pass: string): Promise<number> => {
      const res = await request(`${m.url}/v2/`, { headers: { authorization: basic(user, pass) } });
      await res.body.dump();
      return res.statusCode;
    };
    const costOf = (hash: string): string => hash.slice(4, 6);
    expect(await status('mallory', 'guess')).toBe(401);
    expect(await status('bob', 'guess')).toBe(401);
    expect(seen.map(costOf)).toEqual(['04', '04']);

    writeAtomically(file, `${line('bob', 'bob-pw', 6)}${line('frank', 'frank-pw', 6)}`);
    await until(async () => (await status('frank', 'frank-pw')) === 200, 'the reload');
    seen.length = 0;
    expect(await status('mallory', 'guess')).toBe(401);
    expect(seen.map(costOf)).toEqual(['06']);
  });
});

describe('anonymous read', () => {
  it('lets requests without credentials read, but still refuses wrong credentials', async () => {
    const dir = cleanup.add(await makeTempDir('mirrorgate-anon-'));
    const file = join(dir.path, 'htpasswd');
    writeFileSync(file, line('alice', PASSWORD, 4));
    const open = cleanup.add(await startMirror({ upstreams: { 'docker.io': hub.url }, config: { mirror: { auth: { htpasswd: file, anonymousRead: true } } } }));
    const anon = await request(`${open.url}/v2/library/alpine/manifests/3.20`, { method: 'HEAD', headers: { accept: MediaTypes.dockerManifest } });
    await anon.body.dump();
    expect(anon.statusCode).toBe(200);
    const wrong = await request(`${open.url}/v2/`, { headers: { authorization: basic('alice', 'nope') } });
    await wrong.body.dump();
    expect(wrong.statusCode).toBe(401);
    const right = await request(`${open.url}/v2/`, { headers: { authorization: basic('alice', PASSWORD) } });
    await right.body.dump();
    expect(right.statusCode).toBe(200);
  });
});
