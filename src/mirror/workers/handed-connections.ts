import { Socket, type AddressInfo, type Server } from 'node:net';
import type { ConnectionSource } from '../http/connection-source.js';
import { HANDOFF, isHandoffMessage, type HandoffMessage } from './handoff-messages.js';

/** The IPC channel to the primary: `process` in a worker. */
export interface PrimaryChannel {
  on(event: 'message', listener: (message: unknown, handle: unknown) => void): unknown;
  send(message: HandoffMessage): void;
}

/**
 * A worker's connections: the sockets its primary accepted and handed over (see ConnectionHandoff). Each
 * is acknowledged as soon as it arrives, so the primary closes its copy and a socket lives in one process
 * only; the server's connection limit (`maxConnections`) is applied here, as listening would.
 */
export class HandedConnections implements ConnectionSource {
  private readonly live = new Set<Socket>();
  private server: Server | undefined;
  private closing = false;
  private drained: (() => void) | undefined;
  private readonly onMessage = (message: unknown, handle: unknown): void => {
    if (!isHandoffMessage(message) || message.kind !== 'connection') return;
    this.channel.send({ type: HANDOFF, kind: 'taken', id: message.id });
    if (handle instanceof Socket) this.take(handle);
  };

  constructor(private readonly address: AddressInfo, private readonly channel: PrimaryChannel) {}

  open(server: Server): Promise<AddressInfo> {
    this.server = server;
    // An HTTP server starts tracking connections (idle sweeps, header and request timeouts) on 'listening'.
    server.emit('listening');
    this.channel.on('message', this.onMessage);
    this.channel.send({ type: HANDOFF, kind: 'ready' });
    return Promise.resolve(this.address);
  }

  close(): Promise<void> {
    if (!this.closing) {
      // Still listening: a connection the primary sent before it read 'closing' is taken and closed at once.
      this.closing = true;
      this.channel.send({ type: HANDOFF, kind: 'closing' });
      // Ends the server's connection tracking as closing a listening server does; the sockets stay open.
      this.server?.close();
    }
    if (this.live.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const previous = this.drained;
      this.drained = () => {
        previous?.();
        resolve();
      };
    });
  }

  private take(socket: Socket): void {
    const server = this.server!;
    if (this.closing || (server.maxConnections > 0 && this.live.size >= server.maxConnections)) {
      socket.destroy();
      return;
    }
    this.live.add(socket);
    socket.once('close', () => {
      this.live.delete(socket);
      if (this.closing && this.live.size === 0) this.drained?.();
    });
    server.emit('connection', socket);
  }
}
