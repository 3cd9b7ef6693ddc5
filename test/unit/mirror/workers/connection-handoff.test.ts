import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../../src/common/logger.js';
import { ConnectionHandoff, type HandoffWorker } from '../../../../src/mirror/workers/connection-handoff.js';
import { HANDOFF, type HandoffMessage } from '../../../../src/mirror/workers/handoff-messages.js';
import { useCleanup } from '../../../helpers/tmp.js';

/** A worker in this process: it records the sockets it is sent and says what the test tells it to. */
class FakeWorker extends EventEmitter implements HandoffWorker {
  readonly process = { pid: 0 };
  readonly got: { id: number; socket: Socket }[] = [];
  constructor(readonly id: number) {
    super();
  }
  send(message: HandoffMessage, handle: Socket, _options: { keepOpen: boolean }, callback: (err: Error | null) => void): boolean {
    if (message.kind === 'connection') this.got.push({ id: message.id, socket: handle });
    callback(null);
    return true;
  }
  say(kind: 'ready' | 'closing'): void {
    this.emit('message', { type: HANDOFF, kind });
  }
}

const until = async (check: () => boolean): Promise<void> => {
  for (const deadline = Date.now() + 5000; !check(); ) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('ConnectionHandoff', () => {
  const cleanup = useCleanup();

  async function started(): Promise<{ handoff: ConnectionHandoff; port: number; readied: number[]; open: () => Socket }> {
    const readied: number[] = [];
    const handoff = new ConnectionHandoff({ listen: '127.0.0.1:0', logger: createLogger({ level: 'silent' }), onReady: (w) => readied.push(w.id) });
    const { port } = await handoff.listen();
    const clients: Socket[] = [];
    cleanup.add(async () => {
      for (const c of clients) c.destroy();
      await handoff.close();
    });
    const open = (): Socket => {
      const c = connect(port, '127.0.0.1');
      c.on('error', () => undefined);
      clients.push(c);
      return c;
    };
    return { handoff, port, readied, open };
  }

  it('hands connections round-robin to the ready workers only; queued while none is ready; none to a closing worker', async () => {
    const { handoff, readied, open } = await started();
    const [a, b] = [new FakeWorker(1), new FakeWorker(2)];
    handoff.attach(a);
    handoff.attach(b);
    // These workers never say they took a socket: the primary's copies go when they exit.
    cleanup.add(() => {
      a.emit('exit');
      b.emit('exit');
    });
    open();
    open();
    await new Promise((r) => setTimeout(r, 100));
    expect(a.got.length + b.got.length).toBe(0);
    a.say('ready');
    await until(() => a.got.length === 2);
    b.say('ready');
    expect(readied).toEqual([1, 2]);
    for (let i = 0; i < 4; i++) open();
    await until(() => a.got.length + b.got.length === 6);
    expect([a.got.length, b.got.length]).toEqual([4, 2]);
    a.say('closing');
    open();
    open();
    await until(() => b.got.length === 4);
    expect(a.got.length).toBe(4);
  });

  it('closes the sockets a worker never took when it exits, and its own copy of those it took', async () => {
    const { handoff, open } = await started();
    const w = new FakeWorker(1);
    handoff.attach(w);
    w.say('ready');
    const clients = [open(), open()];
    await until(() => w.got.length === 2);
    w.emit('message', { type: HANDOFF, kind: 'taken', id: w.got[0]!.id });
    expect(w.got[0]!.socket.destroyed).toBe(true);
    expect(w.got[1]!.socket.destroyed).toBe(false);
    const ended = new Promise((r) => clients[1]!.once('close', r));
    w.emit('exit');
    expect(w.got[1]!.socket.destroyed).toBe(true);
    await ended;
  });
});
