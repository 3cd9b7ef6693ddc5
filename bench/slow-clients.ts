/**
 * Slow-client attack on the mirror's connection slots: with `limits.maxConnections` at 50, fifty clients
 * connect and trickle bytes every 250 ms: a header line, never finishing the request (or, with `--attack tls`,
 * against a TLS mirror, a byte of a ClientHello, never finishing the handshake). An attacker notices the
 * close when its next write fails, so held times are up to 250 ms longer than the mirror's. Measured:
 *   - how long past the timeout each attacking connection is held (connect to server close, minus the
 *     headers timeout), or that it was still open when the attack ended;
 *   - /healthz from a fresh connection every 200 ms during the attack: how many were answered, how fast,
 *     and the longest stretch with no answer; against /healthz before the attack (the peer).
 * `--reconnect` makes each attacker connect again as soon as it is closed (a sustained attack).
 *
 *   node --import tsx bench/slow-clients.ts [--attack headers|tls] [--seconds 15] [--clients 50] [--reconnect]
 *
 * The mirror runs in its own process (`src/main.ts mirror`), attackers and probes in this one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { rawRequest } from '../test/helpers/raw-http.js';
import { testCa, writeServingCert } from '../test/helpers/test-certs.js';
import { Cleanup, freePort, makeTempDir } from '../test/helpers/tmp.js';
import { percentile } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    attack: { type: 'string', default: 'headers' },
    seconds: { type: 'string', default: '15' },
    clients: { type: 'string', default: '50' },
    reconnect: { type: 'boolean', default: false },
  },
});
const attack = values.attack === 'tls' ? 'tls' : 'headers';
const seconds = Number(values.seconds);
const clients = Number(values.clients);
const HEADERS_TIMEOUT_MS = 2000;
const REQUEST_TIMEOUT_MS = 3000;
const PROBE_EVERY_MS = 200;
const PROBE_TIMEOUT_MS = 2000;
const cleanup = new Cleanup();
const fmt = (ms: number): string => (Number.isFinite(ms) ? ms.toFixed(ms < 10 ? 1 : 0) : '-');

async function startMirrorProcess(): Promise<number> {
  const dir = cleanup.add(await makeTempDir('mirrorgate-bench-slow-'));
  const port = await freePort();
  const tls = attack === 'tls' ? await writeServingCert(dir.path, testCa()) : undefined;
  const config = {
    // Never contacted: the attack and the probes stay off /v2.
    upstreams: { 'docker.io': { url: 'http://127.0.0.1:9' } },
    mirror: {
      listen: `127.0.0.1:${port}`,
      storage: { path: join(dir.path, 'data') },
      headersTimeout: `${HEADERS_TIMEOUT_MS}ms`,
      limits: { requestTimeout: `${REQUEST_TIMEOUT_MS}ms`, idleTimeout: '60s', maxConnections: clients },
      ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}),
    },
    log: { level: 'error' },
  };
  const file = join(dir.path, 'config.json'); // YAML is a superset of JSON
  await writeFile(file, JSON.stringify(config));
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'mirror', '--config', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  cleanup.add(() => new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : (child.once('exit', () => resolve()), child.kill('SIGTERM')))));
  for (let i = 0; i < 200; i++) {
    if ((await probe(port)).ok) return port;
    await sleep(100);
  }
  throw new Error('mirror did not start');
}

interface Probe {
  ok: boolean;
  ms: number;
  at: number;
}

/** /healthz on a fresh connection; over TLS the handshake is part of the time. */
async function probe(port: number): Promise<Probe> {
  const at = Date.now();
  const req = 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
  if (attack === 'tls') {
    const { connect } = await import('node:tls');
    return new Promise((resolve) => {
      let text = '';
      const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => s.write(req));
      const done = (): void => {
        clearTimeout(timer);
        s.destroy();
        resolve({ ok: /^HTTP\/1\.1 200 /.test(text), ms: Date.now() - at, at });
      };
      const timer = setTimeout(done, PROBE_TIMEOUT_MS);
      s.on('data', (c: Buffer) => (text += c.toString('latin1')));
      s.on('close', done);
      s.on('error', done);
    });
  }
  const answer = await rawRequest(port, req, PROBE_TIMEOUT_MS);
  return { ok: answer.status === 200, ms: Date.now() - at, at };
}

/** One attacking client; resolves with how long the server kept its connection (undefined: still open at `until`). */
function attacker(port: number, until: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const opened = Date.now();
    // allowHalfOpen: the attacker keeps sending after the server ends its side, as a hostile client would.
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    let k = 0;
    const tick = setInterval(() => {
      if (Date.now() >= until) return finish(undefined);
      // Over TLS: the start of a ClientHello, a byte at a time, so the handshake never completes.
      const bytes = attack === 'tls' ? (k++ === 0 ? '\x16' : '\x03') : k++ === 0 ? 'GET /v2/ HTTP/1.1\r\nHost: x\r\n' : `X-Slow-${k}: y\r\n`;
      if (socket.writable) socket.write(bytes);
    }, 250);
    const finish = (held: number | undefined): void => {
      clearInterval(tick);
      socket.destroy();
      resolve(held);
    };
    socket.on('close', () => finish(Date.now() - opened));
    socket.on('error', () => undefined);
  });
}

async function main(): Promise<void> {
  const port = await startMirrorProcess();
  const baseline: Probe[] = [];
  for (let i = 0; i < 20; i++) baseline.push(await probe(port));

  const started = Date.now();
  const until = started + seconds * 1000;
  const held: (number | undefined)[] = [];
  const attackers = Array.from({ length: clients }, async () => {
    do {
      held.push(await attacker(port, until));
    } while (values.reconnect && Date.now() < until);
  });
  await sleep(300); // every attacker has its slot
  const probes: Probe[] = [];
  while (Date.now() < until) {
    probes.push(await probe(port));
    await sleep(PROBE_EVERY_MS);
  }
  await Promise.all(attackers);

  const closed = held.filter((h): h is number => h !== undefined).map((h) => h - HEADERS_TIMEOUT_MS);
  const stillOpen = held.length - closed.length;
  const answered = probes.filter((p) => p.ok);
  let gap = 0;
  let last = started;
  for (const p of probes) {
    if (p.ok) {
      gap = Math.max(gap, p.at - last);
      last = p.at + p.ms;
    }
  }
  gap = Math.max(gap, answered.length === 0 ? until - started : 0);
  const base = percentile(baseline.map((p) => p.ms), 50);
  const during = answered.length ? percentile(answered.map((p) => p.ms), 50) : NaN;
  console.log(`attack: ${clients} ${attack === 'tls' ? 'TLS handshake tricklers' : 'header tricklers'}${values.reconnect ? ' (reconnecting)' : ''} for ${seconds} s, maxConnections ${clients}, headersTimeout ${HEADERS_TIMEOUT_MS} ms, requestTimeout ${REQUEST_TIMEOUT_MS} ms`);
  console.log(`connections: ${held.length}; closed by the mirror: ${closed.length}, held past the headers timeout p50 ${closed.length ? fmt(percentile(closed, 50)) : '-'} ms, max ${closed.length ? fmt(Math.max(...closed)) : '-'} ms; still open when the attack ended (held > ${fmt(seconds * 1000 - HEADERS_TIMEOUT_MS)} ms past the timeout): ${stillOpen}`);
  console.log(`/healthz before the attack: p50 ${fmt(base)} ms`);
  console.log(`/healthz during the attack: ${answered.length}/${probes.length} answered, p50 ${fmt(during)} ms (${fmt(during / base)}x before), longest stretch without an answer ${fmt(gap)} ms`);
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => cleanup.run());
