import http from 'node:http';
import https from 'node:https';
import type { RequestListener } from 'node:http';
import type { Duplex } from 'node:stream';
import type { MirrorConfig } from '../../config/schema.js';
import { TLS_DEFAULTS, type TlsFiles } from '../tls/tls-files.js';
import { answerClientError, refuseConnect } from './client-error.js';

/**
 * The mirror's Node server, plain or TLS, with the limits that keep slow or hostile clients from holding
 * resources: header size, time to complete the TLS handshake, to send headers and the whole request (not the
 * response: blob downloads are not cut), idle sockets, keep-alive lifetime, connection count. Parser
 * rejections and timeouts get the spec error body, then the socket is destroyed.
 * With TLS files, new connections use a reloaded certificate as soon as it is read.
 */
export function createHttpServer(app: RequestListener, mirror: Pick<MirrorConfig, 'headersTimeout' | 'limits'>, tls?: TlsFiles): http.Server | https.Server {
  const { limits } = mirror;
  const headersTimeout = mirror.headersTimeout;
  const options: http.ServerOptions = {
    headersTimeout,
    // Request bodies get their own limits (see requestGuard): Node's would cut a push of a large layer.
    requestTimeout: 0,
    keepAliveTimeout: limits.keepAliveTimeout,
    maxHeaderSize: limits.maxHeaderSize,
    // Timeouts are enforced on this tick; the default 30 s would let a slow client overstay by that much.
    connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(headersTimeout / 4))),
  };
  // A TLS handshake comes before the headers and gets as long (Node's default is 120 s).
  const server = tls ? https.createServer({ ...options, ...TLS_DEFAULTS, ...tls.current, handshakeTimeout: headersTimeout }, app) : http.createServer(options, app);
  server.maxRequestsPerSocket = limits.maxRequestsPerSocket;
  if (limits.maxConnections > 0) server.maxConnections = limits.maxConnections;
  server.setTimeout(limits.idleTimeout); // no traffic either way this long: the socket is destroyed
  server.on('clientError', answerClientError);
  server.on('connect', refuseConnect);
  // A failed or timed-out handshake frees the slot now (Node alone leaves a silent client's socket open longer).
  if (tls) server.on('tlsClientError', (_err: Error, socket: Duplex) => socket.destroy());
  if (tls && server instanceof https.Server) {
    const s = server;
    tls.onChange((pair) => s.setSecureContext({ ...TLS_DEFAULTS, ...pair }));
  }
  return server;
}
