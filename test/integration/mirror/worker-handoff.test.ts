import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliProcess } from '../../helpers/cli-process.js';
import { testCa, writeServingCert } from '../../helpers/test-certs.js';
import { Cleanup, freePort, makeTempDir } from '../../helpers/tmp.js';

/**
 * The primary of a mirror with workers hands each accepted connection to a worker. A worker killed while
 * connections are on their way to it must not leave them open and unanswered (node:cluster's own round-robin
 * does: its primary keeps a copy of each socket its dead worker never took): each client gets its answer
 * or sees the connection end.
 */
const cleanup = new Cleanup();
let mirror: CliProcess;
let port: number;

/** Worker id -> pid, from the primary's 'worker listening' log lines. */
function workers(cli: CliProcess = mirror): Map<number, number> {
  const found = new Map<number, number>();
  for (const line of cli.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const l = JSON.parse(line) as { msg?: string; worker?: number; workerPid?: number };
      if (l.msg === 'worker listening') found.set(l.worker!, l.workerPid!);
    } catch {
      // not a log line
    }
  }
  return found;
}

/** One request on a raw connection: 'answered', 'ended' (closed without an answer) or 'open' (still open after `ms`). */
function request(ms: number): Promise<'answered' | 'ended' | 'open'> {
  return new Promise((resolve) => {
    let got = '';
    const socket = connect(port, '127.0.0.1', () => socket.write('GET /v2/ HTTP/1.1\r\nHost: mirror\r\nConnection: close\r\n\r\n'));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('open');
    }, ms);
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(/^HTTP\/1\.1 200 /.test(got) ? 'answered' : 'ended');
    });
  });
}

beforeAll(async () => {
  const dir = cleanup.add(await makeTempDir('mirrorgate-handoff-'));
  port = await freePort();
  mirror = runCli(['mirror', '--storage', path.join(dir.path, 'data'), '--listen', `127.0.0.1:${port}`, '--workers', '4'], cleanup, { MIRRORGATE_LOG_LEVEL: 'info' });
  await mirror.waitForOutput(/mirrorgate mirror listening on .*4 workers/, 60_000);
  for (const deadline = Date.now() + 30_000; workers().size < 4 && Date.now() < deadline; ) await sleep(50);
}, 90_000);

afterAll(() => cleanup.run());

describe('connections handed to a worker that is killed', () => {
  it('are answered or closed, never left open: three workers killed in turn with requests on their way', async () => {
    expect(workers().size).toBe(4);
    const victims = [...workers().values()].slice(0, 3);
    const outcomes: string[] = [];
    for (const pid of victims) {
      // The connections are opened, then the worker dies while the primary is handing some of them to it.
      const requests = Array.from({ length: 12 }, () => request(10_000));
      process.kill(pid, 'SIGKILL');
      outcomes.push(...(await Promise.all(requests)));
    }
    expect(outcomes.filter((o) => o === 'open')).toEqual([]);
    // The workers still running answered theirs.
    expect(outcomes.filter((o) => o === 'answered').length).toBeGreaterThan(0);
    // And after the kills, every request is answered.
    for (let i = 0; i < 8; i++) expect(await request(10_000)).toBe('answered');
  }, 90_000);
});

describe('a mirror with workers and TLS', () => {
  it('serves TLS on every worker: the handed connections are plain sockets, the handshake is the worker\'s', async () => {
    const dir = cleanup.add(await makeTempDir('mirrorgate-handoff-tls-'));
    const ca = testCa();
    const serving = await writeServingCert(dir.path, ca);
    const tlsPort = await freePort();
    const file = path.join(dir.path, 'config.json');
    await writeFile(file, JSON.stringify({ mirror: { listen: `127.0.0.1:${tlsPort}`, workers: 2, storage: { path: path.join(dir.path, 'data') }, tls: { cert: serving.cert, key: serving.key } } }));
    const cli = runCli(['mirror', '--config', file], cleanup, { MIRRORGATE_LOG_LEVEL: 'info' });
    await cli.waitForOutput(/mirrorgate mirror listening on https:.*2 workers/, 60_000);
    for (const deadline = Date.now() + 30_000; workers(cli).size < 2 && Date.now() < deadline; ) await sleep(50);
    const answers = await Promise.all(
      Array.from(
        { length: 6 },
        () =>
          new Promise<string>((resolve, reject) => {
            let got = '';
            const s = tls.connect({ host: '127.0.0.1', port: tlsPort, ca: ca.cert, servername: 'localhost' }, () => s.write('GET /v2/ HTTP/1.1\r\nHost: mirror\r\nConnection: close\r\n\r\n'));
            s.on('data', (d: Buffer) => (got += d.toString('latin1')));
            s.on('error', reject);
            s.on('close', () => resolve(got.split('\r\n')[0]!));
          }),
      ),
    );
    expect(answers).toEqual(Array(6).fill('HTTP/1.1 200 OK'));
  }, 90_000);
});
