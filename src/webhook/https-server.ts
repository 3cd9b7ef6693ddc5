import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { RequestListener } from 'node:http';
import type { ListenAddress } from '../config/listen.js';
import type { Logger } from '../common/logger.js';
import type { TlsSource } from './tls-source.js';

/** An HTTPS server whose certificate follows its TLS source without a restart. */
export interface RunningHttpsServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

export async function listenHttps(app: RequestListener, listen: ListenAddress, tls: TlsSource, logger: Logger): Promise<RunningHttpsServer> {
  const server = createServer({ ...tls.current(), minVersion: 'TLSv1.2' }, app);
  // The API server keeps connections open between reviews; outlive its idle timeout (90s) so it does not race us.
  server.keepAliveTimeout = 100_000;
  server.headersTimeout = 30_000;
  server.requestTimeout = 30_000;
  // Tracked so close() also ends sockets still in the TLS handshake, which closeAllConnections does not see.
  const sockets = new Set<Socket>();
  let closing = false;
  server.on('connection', (socket: Socket) => {
    if (closing) return void socket.destroy();
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  tls.onChange((material) => {
    server.setSecureContext({ ...material, minVersion: 'TLSv1.2' });
    logger.info('serving certificate swapped');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        closing = true;
        server.close(() => resolve());
        server.closeIdleConnections();
        // In-flight reviews are answered within milliseconds; give them a moment, then end everything.
        setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, 200).unref();
      }),
  };
}
