import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A small scriptable HTTP(S) server for hostile-upstream tests: each test sets `handle` to answer as the
 * attack needs (redirects, challenges, odd bodies). It records every request (with its Authorization
 * header, which must only ever reach the hosts it belongs to) and every TCP connection, so a test can
 * show that the mirror never even connected.
 */
export interface HostileRequest {
  method: string;
  /** Path and query, as received. */
  path: string;
  authorization: string | undefined;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface HostileServer {
  /** `http(s)://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  readonly requests: HostileRequest[];
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** Answers every request; the default is a plain 404. */
  handle: Handler;
  stop(): Promise<void>;
}

/** Sends a JSON body with the given status and headers. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export async function startHostileServer(opts: { tls?: { cert: string; key: string } } = {}): Promise<HostileServer> {
  const requests: HostileRequest[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const state: { handle: Handler } = {
    handle: (_req, res) => sendJson(res, 404, { errors: [{ code: 'NAME_UNKNOWN', message: 'not here' }] }),
  };
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', authorization: req.headers.authorization });
    req.resume();
    Promise.resolve(state.handle(req, res)).catch(() => res.destroy());
  };
  const server: Server = opts.tls ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, listener) : createHttpServer(listener);
  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    requests,
    get connections() {
      return connections;
    },
    get handle() {
      return state.handle;
    },
    set handle(h: Handler) {
      state.handle = h;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
