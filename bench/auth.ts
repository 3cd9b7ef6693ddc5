/**
 * Cached manifest HEAD requests per second through the mirror with htpasswd auth on (bcrypt cost 10, every
 * request carrying Basic credentials) against auth off, in the same run on the same machine.
 *
 *   node --import tsx bench/auth.ts [--seconds 4] [--connections 64] [--rounds 2]
 *
 * Each mirror runs in its own process (`src/main.ts mirror`), the load comes from this one (undici Pool).
 * Rounds alternate off/on so drift on a shared machine hits both; the best round of each is reported.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import bcrypt from 'bcryptjs';
import { Pool, request } from 'undici';
import { startDockerRegistry } from '../test/helpers/docker-registry.js';
import { MediaTypes, pushImage } from '../test/helpers/images.js';
import { Cleanup, freePort, makeTempDir } from '../test/helpers/tmp.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '4' }, connections: { type: 'string', default: '64' }, rounds: { type: 'string', default: '2' } } });
const seconds = Number(values.seconds);
const connections = Number(values.connections);
const rounds = Number(values.rounds);
const cleanup = new Cleanup();

async function startMirrorProcess(name: string, upstream: string, auth: Record<string, unknown> | undefined): Promise<string> {
  const dir = cleanup.add(await makeTempDir(`mirrorgate-bench-${name}-`));
  const port = await freePort();
  const config = {
    upstreams: { 'docker.io': { url: upstream } },
    mirror: { listen: `127.0.0.1:${port}`, storage: { path: join(dir.path, 'data') }, ...(auth ? { auth } : {}) },
    log: { level: 'warn' },
  };
  const file = join(dir.path, 'config.json'); // YAML is a superset of JSON
  await writeFile(file, JSON.stringify(config));
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'mirror', '--config', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  cleanup.add(() => new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : (child.once('exit', () => resolve()), child.kill('SIGTERM')))));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      const res = await request(`${url}/healthz`);
      await res.body.dump();
      if (res.statusCode === 200) return url;
    } catch {
      /* not up yet */
    }
    await sleep(100);
  }
  throw new Error(`mirror ${name} did not start`);
}

async function load(url: string, path: string, headers: Record<string, string>): Promise<{ rps: number; errors: number }> {
  const pool = new Pool(url, { connections, pipelining: 1 });
  let done = 0;
  let errors = 0;
  const end = Date.now() + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (Date.now() < end) {
      try {
        const res = await pool.request({ method: 'HEAD', path, headers });
        await res.body.dump();
        if (res.statusCode === 200) done++;
        else errors++;
      } catch {
        errors++;
      }
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: connections }, worker));
  const elapsed = (Date.now() - started) / 1000;
  await pool.close();
  return { rps: done / elapsed, errors };
}

async function main(): Promise<void> {
  const registry = cleanup.add(await startDockerRegistry());
  const image = await pushImage(registry.url, 'library/bench', '1', { layers: [1024], format: 'docker', seed: 'bench-auth' });
  const dir = cleanup.add(await makeTempDir('mirrorgate-bench-htpasswd-'));
  const htpasswd = join(dir.path, 'htpasswd');
  await writeFile(htpasswd, `bench:${bcrypt.hashSync('bench-password', 10)}\n`);
  const off = await startMirrorProcess('off', registry.url, undefined);
  const on = await startMirrorProcess('on', registry.url, { htpasswd });
  const path = `/v2/library/bench/manifests/${image.digest}`;
  const accept = MediaTypes.dockerManifest;
  const modes: { name: string; url: string; headers: Record<string, string> }[] = [
    { name: 'auth off', url: off, headers: { accept } },
    { name: 'auth on ', url: on, headers: { accept, authorization: `Basic ${Buffer.from('bench:bench-password').toString('base64')}` } },
  ];
  for (const m of modes) {
    const res = await request(`${m.url}${path}`, { headers: m.headers }); // fills the cache (and, with auth, the verification cache)
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`${m.name}: warm-up answered ${res.statusCode}`);
    await load(m.url, path, m.headers); // short warm-up of the JIT
  }
  const best = new Map<string, number>();
  for (let r = 0; r < rounds; r++) {
    for (const m of modes) {
      const { rps, errors } = await load(m.url, path, m.headers);
      process.stdout.write(`round ${r + 1} ${m.name}: ${rps.toFixed(0)} req/s${errors ? ` (${errors} errors)` : ''}\n`);
      best.set(m.name, Math.max(best.get(m.name) ?? 0, rps));
    }
  }
  const offRps = best.get('auth off')!;
  const onRps = best.get('auth on ')!;
  process.stdout.write(
    `\ncached manifest HEAD by digest, ${connections} connections, ${seconds} s per measurement, best of ${rounds} rounds\n` +
      `auth off: ${offRps.toFixed(0)} req/s\nauth on (bcrypt cost 10, Basic on every request): ${onRps.toFixed(0)} req/s\nratio on/off: ${(onRps / offRps).toFixed(3)}\n`,
  );
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanup.run());
