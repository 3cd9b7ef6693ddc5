import type { AddressInfo, Server } from 'node:net';
import { parseListen } from '../../config/listen.js';

/**
 * Where the mirror's HTTP(S) server gets its connections: a listening socket of its own (one process), or
 * the sockets a primary process hands to it (a worker).
 */
export interface ConnectionSource {
  /** Starts feeding `server` with connections; resolves with the address clients reach. */
  open(server: Server): Promise<AddressInfo>;
  /** Takes no new connections; resolves once every connection it gave has closed. */
  close(): Promise<void>;
}

/** The server listens on `listen` (`mirror.listen`) itself. */
export class ListeningSocket implements ConnectionSource {
  private server: Server | undefined;

  constructor(private readonly listen: string) {}

  async open(server: Server): Promise<AddressInfo> {
    const listen = parseListen(this.listen)!;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listen.port, listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    return server.address() as AddressInfo;
  }

  close(): Promise<void> {
    const server = this.server;
    if (!server) return Promise.resolve();
    // net.Server calls back once the last connection has closed.
    return new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** The URL clients reach a bound address at (a wildcard address as loopback). */
export function urlOf(address: AddressInfo, tls: boolean): string {
  const raw = address.address;
  const host = raw === '0.0.0.0' || raw === '::' || raw === '' ? '127.0.0.1' : address.family === 'IPv6' ? `[${raw}]` : raw;
  return `${tls ? 'https' : 'http'}://${host}:${address.port}`;
}
