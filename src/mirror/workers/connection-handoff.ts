import { createServer, type AddressInfo, type Socket } from 'node:net';
import type { Logger } from '../../common/logger.js';
import { ListeningSocket } from '../http/connection-source.js';
import { HANDOFF, isHandoffMessage, type HandoffMessage } from './handoff-messages.js';

/** A worker as the handoff sees it: a cluster Worker. */
export interface HandoffWorker {
  readonly id: number;
  readonly process: { readonly pid?: number | undefined };
  send(message: HandoffMessage, handle: Socket, options: { keepOpen: boolean }, callback: (err: Error | null) => void): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  on(event: 'exit', listener: () => void): unknown;
}

/** Connections accepted while no worker is ready wait in this queue; beyond it they are closed. */
const MAX_QUEUED = 1024;

/**
 * The primary's listening socket, and the round-robin handoff of each accepted connection to a ready worker.
 * node:cluster's own round-robin leaves a connection open and unanswered when its worker dies before taking
 * it (the primary never closes its copy); here the primary keeps its copy until the worker says it took the
 * socket, and closes the copies a dead worker never took, so their clients see the connection end.
 */
export class ConnectionHandoff {
  private readonly socket: ListeningSocket;
  private readonly ready: HandoffWorker[] = [];
  private next = 0;
  private lastId = 0;
  /** Sockets sent to a worker that has not said it took them yet. */
  private readonly handed = new Map<number, { socket: Socket; worker: HandoffWorker }>();
  private readonly queued: Socket[] = [];
  private closed = false;

  constructor(private readonly opts: { listen: string; logger: Logger; onReady: (worker: HandoffWorker) => void }) {
    this.socket = new ListeningSocket(opts.listen);
  }

  /** Listens on `mirror.listen`; resolves with the bound address. */
  async listen(): Promise<AddressInfo> {
    const server = createServer({ pauseOnConnect: true }, (socket) => {
      // A client that resets before a worker took its connection must not take the primary down.
      socket.on('error', () => socket.destroy());
      this.dispatch(socket);
    });
    const address = await this.socket.open(server);
    server.on('error', (err) => this.opts.logger.error({ err: err.message }, 'listening socket error'));
    return address;
  }

  /** Follows a new worker: it gets connections from when it says it is ready until it closes or exits. */
  attach(worker: HandoffWorker): void {
    worker.on('message', (message) => {
      if (!isHandoffMessage(message)) return;
      if (message.kind === 'ready') {
        if (!this.ready.includes(worker)) this.ready.push(worker);
        this.opts.onReady(worker);
        this.flush();
      } else if (message.kind === 'closing') {
        this.retire(worker);
      } else if (message.kind === 'taken') {
        const entry = this.handed.get(message.id);
        if (entry?.worker !== worker) return;
        this.handed.delete(message.id);
        // The worker has its own copy: closing this one leaves the connection open.
        entry.socket.destroy();
      }
    });
    worker.on('exit', () => {
      this.retire(worker);
      for (const [id, entry] of this.handed) {
        if (entry.worker !== worker) continue;
        this.handed.delete(id);
        // The last copy of a socket the dead worker may have read from: its client sees the connection end.
        entry.socket.destroy();
      }
    });
  }

  /** Accepts no more connections and closes those still waiting for a worker. */
  close(): Promise<void> {
    this.closed = true;
    for (const socket of this.queued.splice(0)) socket.destroy();
    return this.socket.close();
  }

  private dispatch(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    const worker = this.pick();
    if (worker) this.hand(socket, worker);
    else if (this.queued.length < MAX_QUEUED) this.queued.push(socket);
    else socket.destroy();
  }

  private hand(socket: Socket, worker: HandoffWorker): void {
    const id = ++this.lastId;
    this.handed.set(id, { socket, worker });
    worker.send({ type: HANDOFF, kind: 'connection', id }, socket, { keepOpen: true }, (err) => {
      if (!err || this.handed.get(id)?.worker !== worker) return;
      // Never sent: the socket is untouched, another worker can have it.
      this.handed.delete(id);
      this.retire(worker);
      this.dispatch(socket);
    });
  }

  private pick(): HandoffWorker | undefined {
    if (this.ready.length === 0) return undefined;
    this.next %= this.ready.length;
    return this.ready[this.next++];
  }

  private retire(worker: HandoffWorker): void {
    const i = this.ready.indexOf(worker);
    if (i >= 0) this.ready.splice(i, 1);
  }

  private flush(): void {
    for (let worker = this.pick(); worker && this.queued.length > 0; worker = this.pick()) this.hand(this.queued.shift()!, worker);
  }
}
