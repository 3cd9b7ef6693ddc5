import { EventEmitter } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../../src/config/load.js';
import { createHttpServer } from '../../../../src/mirror/http/http-server.js';
import { HandedConnections, type PrimaryChannel } from '../../../../src/mirror/workers/handed-connections.js';
import { HANDOFF, type HandoffMessage } from '../../../../src/mirror/workers/handoff-messages.js';
import { useCleanup } from '../../../helpers/tmp.js';

/** The primary's end of the channel, in this process: it hands sockets and records what the worker says. */
class FakePrimary extends EventEmitter implements PrimaryChannel {
  readonly said: HandoffMessage[] = [];
  private lastId = 0;
  send(message: HandoffMessage): void {
    this.said.push(message);
  }
  hand(socket: Socket): number {
    const id = ++this.lastId;
    this.emit('message', { type: HANDOFF, kind: 'connection', id }, socket);
    return id;
  }
}

/** An HTTP exchange on a raw connection: what came back before the server closed it. */
function exchange(port: number, text: string, ms = 5000): Promise<{ got: string; closed: boolean }> {
  return new Promise((resolve) => {
    let got = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ got, closed: false });
    }, ms);
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ got, closed: true });
    });
  });
}

describe('HandedConnections', () => {
  const cleanup = useCleanup();

  /** A mirror HTTP server fed by HandedConnections, and a local socket whose connections the fake primary hands it. */
  async function setup(overrides: Record<string, unknown> = {}): Promise<{ primary: FakePrimary; handed: HandedConnections; port: number; requests: string[] }> {
    const config = loadConfig({ overrides: { mirror: { headersTimeout: '300ms', ...overrides } } });
    const requests: string[] = [];
    const http = createHttpServer((req, res) => {
      requests.push(req.url ?? '');
      res.end('ok');
    }, config.mirror);
    const primary = new FakePrimary();
    const handed = new HandedConnections({ address: '127.0.0.1', family: 'IPv4', port: 1 }, primary);
    expect(await handed.open(http)).toEqual({ address: '127.0.0.1', family: 'IPv4', port: 1 });
    expect(primary.said).toEqual([{ type: HANDOFF, kind: 'ready' }]);
    // Not paused: a worker's copy of a handed socket reads from the start.
    const listener: Server = createServer((socket) => primary.hand(socket));
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    cleanup.add(async () => {
      await handed.close();
      await new Promise((r) => listener.close(r));
    });
    return { primary, handed, port: (listener.address() as { port: number }).port, requests };
  }

  it('serves each handed connection and says it took it, at once', async () => {
    const { primary, port, requests } = await setup();
    const { got } = await exchange(port, 'GET /v2/ HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n');
    expect(got).toMatch(/^HTTP\/1\.1 200 /);
    expect(requests).toEqual(['/v2/']);
    expect(primary.said).toContainEqual({ type: HANDOFF, kind: 'taken', id: 1 });
  });

  it('enforces the header timeout on handed connections, as on a listening server', async () => {
    const { port } = await setup();
    const started = Date.now();
    const { got, closed } = await exchange(port, 'GET /v2/ HTTP/1.1\r\nHost: m\r\n');
    expect(closed).toBe(true);
    expect(got).toMatch(/^HTTP\/1\.1 408 /);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('closes what comes beyond the connection limit, and everything once closing; close waits for open connections', async () => {
    const { primary, handed, port } = await setup({ limits: { maxConnections: 1 } });
    const held = connect(port, '127.0.0.1');
    await new Promise((r) => held.once('connect', r));
    while (!primary.said.some((m) => m.kind === 'taken')) await new Promise((r) => setTimeout(r, 10));
    expect(await exchange(port, 'GET /v2/ HTTP/1.1\r\nHost: m\r\n\r\n')).toEqual({ got: '', closed: true });
    let closed = false;
    const done = handed.close().then(() => (closed = true));
    expect(primary.said).toContainEqual({ type: HANDOFF, kind: 'closing' });
    // Sent before the primary read 'closing': taken, and closed at once.
    const late = primary.said.length;
    expect(await exchange(port, 'GET /v2/ HTTP/1.1\r\nHost: m\r\n\r\n')).toEqual({ got: '', closed: true });
    expect(primary.said.slice(late)).toEqual([{ type: HANDOFF, kind: 'taken', id: 3 }]);
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(false);
    held.destroy();
    await done;
    expect(closed).toBe(true);
  });
});
