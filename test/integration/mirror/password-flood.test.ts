import bcrypt from 'bcryptjs';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDockerRegistry } from '../../helpers/docker-registry.js';
import { startHubFront, type HubFront } from '../../helpers/hub-front.js';
import { MediaTypes, pushImage, type PushedImage } from '../../helpers/images.js';
import { captureLogs } from '../../helpers/log-capture.js';
import { startMirror, type TestMirror } from '../../helpers/mirror.js';
import { Cleanup, makeTempDir } from '../../helpers/tmp.js';

/**
 * Password guessing against a real mirror with a realistic htpasswd file (bcrypt cost 10): a flood of wrong
 * passwords must not stall health probes or clients whose credentials were already verified, and failed
 * logins are budgeted per client address and per user.
 */

const PASSWORDS = { alice: 'alice-Pa55-word', carol: 'carol-Pa55-word', dave: 'dave-Pa55-word' } as const;
const cleanup = new Cleanup();
const logs = captureLogs();
let hub: HubFront;
let image: PushedImage;
let htpasswd: string;

const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

/** An agent whose connections come from `address` (any 127.x.y.z reaches a server on 127.0.0.1 on Linux). */
function from(address: string, connections = 1): Agent {
  const agent = new Agent({ connections, localAddress: address });
  cleanup.add(() => agent.close());
  return agent;
}

async function call(mirror: TestMirror, agent: Agent, path: string, headers: Record<string, string> = {}) {
  const res = await request(`${mirror.url}${path}`, { headers, dispatcher: agent });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

beforeAll(async () => {
  const registry = cleanup.add(await startDockerRegistry());
  image = await pushImage(registry.url, 'library/alpine', '3.20', { layers: [2048], format: 'docker', seed: 'password-flood' });
  hub = cleanup.add(await startHubFront({ target: registry.url }));
  const dir = cleanup.add(await makeTempDir('mirrorgate-flood-'));
  htpasswd = join(dir.path, 'htpasswd');
  writeFileSync(htpasswd, Object.entries(PASSWORDS).map(([u, p]) => `${u}:${bcrypt.hashSync(p, 10)}\n`).join(''));
}, 120_000);

afterAll(() => cleanup.run());

describe('a flood of wrong passwords', () => {
  it('keeps /healthz, /readyz and already-verified pulls fast while 80 connections send wrong passwords', async () => {
    const mirror = cleanup.add(await startMirror({ upstreams: { 'docker.io': hub.url }, logger: logs.logger, config: { mirror: { auth: { htpasswd } } } }));
    const probe = from('127.0.0.1', 4);
    const manifest = `/v2/library/alpine/manifests/${image.digest}`;
    const carol = { authorization: basic('carol', PASSWORDS.carol), accept: MediaTypes.dockerManifest };
    expect((await call(mirror, probe, manifest, carol)).status).toBe(200); // cached, and carol verified

    // 80 connections, each from its own address and guessing a different unknown user each time, so that
    // neither budget stops the flood early: it keeps the bcrypt threads busy for the whole measurement. A
    // connection told 429 (the bcrypt queue is full) waits a moment: what is measured here is the cost of
    // bcrypt, not of an HTTP flood that ignores 429 (bench/password-flood.ts measures that one too).
    let flooding = true;
    const answered = new Map<number, number>();
    const flood = Array.from({ length: 80 }, async (_, i) => {
      const agent = from(`127.0.1.${i + 1}`);
      for (let n = 0; flooding; n++) {
        const res = await call(mirror, agent, '/v2/', { authorization: basic(`guess-${i}-${n}`, `wrong-${n}`) });
        answered.set(res.status, (answered.get(res.status) ?? 0) + 1);
        if (res.status === 429) await sleep(200);
      }
    });
    await sleep(500);
    const times: Record<'healthz' | 'readyz' | 'pull', number[]> = { healthz: [], readyz: [], pull: [] };
    const timed = async (what: keyof typeof times, path: string, headers?: Record<string, string>): Promise<void> => {
      const started = performance.now();
      const res = await call(mirror, probe, path, headers);
      times[what].push(performance.now() - started);
      expect(res.status, what).toBe(200);
    };
    for (let k = 0; k < 10; k++) {
      await timed('healthz', '/healthz');
      await timed('readyz', '/readyz');
      await timed('pull', manifest, carol);
      await sleep(100);
    }
    flooding = false;
    await Promise.all(flood);
    // The flood really ran bcrypt checks (401s), and none of it held up the probes or carol. (With bcrypt on
    // the event loop, this flood made the median probe take 750 ms and the slowest 26 s.)
    expect(answered.get(401) ?? 0).toBeGreaterThan(10);
    for (const [what, ms] of Object.entries(times)) {
      const sorted = [...ms].sort((a, b) => a - b);
      expect(sorted[Math.floor(sorted.length / 2)], `${what} median`).toBeLessThan(100);
      expect(sorted.at(-1), `${what} slowest`).toBeLessThan(500);
    }
  }, 60_000);
});

describe('failed login budgets', () => {
  let mirror: TestMirror;
  beforeAll(async () => {
    mirror = cleanup.add(
      await startMirror({
        upstreams: { 'docker.io': hub.url },
        logger: logs.logger,
        config: { mirror: { auth: { htpasswd, failedLoginsPerAddress: 5, failedLoginsPerUser: 3, failedLoginWindow: '1m' } } },
      }),
    );
  });

  it('answers 429 TOOMANYREQUESTS with Retry-After once an address spent its budget; another address still logs in', async () => {
    const attacker = from('127.0.2.1');
    const statuses: number[] = [];
    let refused: Awaited<ReturnType<typeof call>> | undefined;
    let refusedMs = 0;
    for (let n = 0; n < 12 && !refused; n++) {
      const started = performance.now();
      const res = await call(mirror, attacker, '/v2/', { authorization: basic(`nobody-${n}`, 'wrong-guess') });
      statuses.push(res.status);
      if (res.status !== 401) [refused, refusedMs] = [res, performance.now() - started];
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    expect(refusedMs).toBeGreaterThanOrEqual(950); // refusals are answered after a second: no fast retry loop
    expect(Number(refused!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(refused!.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect((JSON.parse(refused!.text) as { errors: { code: string }[] }).errors[0]!.code).toBe('TOOMANYREQUESTS');
    // Even the right password is refused from the spent address: guessing stops there, not just failing.
    expect((await call(mirror, attacker, '/v2/', { authorization: basic('dave', PASSWORDS.dave) })).status).toBe(429);
    expect((await call(mirror, from('127.0.2.2'), '/v2/', { authorization: basic('dave', PASSWORDS.dave) })).status).toBe(200);

    const refusal = logs.lines().find((l) => l.msg === 'too many failed logins; refusing logins for a while');
    expect(refusal).toMatchObject({ budget: 'address', address: '127.0.2.1' });
    expect(logs.text()).not.toContain('wrong-guess');
  });

  it('spends a user\'s budget whatever address the guesses come from; clients already verified keep pulling', async () => {
    const verified = from('127.0.3.1');
    const alice = { authorization: basic('alice', PASSWORDS.alice), accept: MediaTypes.dockerManifest };
    const manifest = `/v2/library/alpine/manifests/${image.digest}`;
    expect((await call(mirror, verified, manifest, alice)).status).toBe(200);

    const statuses: number[] = [];
    for (let n = 0; n < 4; n++) statuses.push((await call(mirror, from(`127.0.3.${10 + n}`), '/v2/', { authorization: basic('alice', `guess-${n}`) })).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
    // A fresh address guessing alice is refused at once; an unknown user is budgeted the same way (no enumeration).
    const fresh = await call(mirror, from('127.0.3.50'), '/v2/', { authorization: basic('alice', 'another-guess') });
    expect(fresh.status).toBe(429);
    expect(Number(fresh.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    const ghost: number[] = [];
    for (let n = 0; n < 4; n++) ghost.push((await call(mirror, from(`127.0.3.${60 + n}`), '/v2/', { authorization: basic('ghost', `guess-${n}`) })).status);
    expect(ghost).toEqual([401, 401, 401, 429]);

    // alice's verified client is not locked out by the guessing, and other users log in from new addresses.
    expect((await call(mirror, verified, manifest, alice)).status).toBe(200);
    expect((await call(mirror, from('127.0.3.99'), '/v2/', { authorization: basic('carol', PASSWORDS.carol) })).status).toBe(200);
  });
});
