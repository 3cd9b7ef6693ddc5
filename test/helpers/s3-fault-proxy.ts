import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';

/**
 * A plain HTTP proxy in front of an S3 endpoint that answers chosen requests with `503 SlowDown` (as S3 and
 * RGW do under load) and forwards the rest untouched, Host header included, so SigV4 signatures made for
 * the proxy's address stay valid. Bodies are streamed both ways; every request is logged.
 */
export interface S3FaultProxy {
  readonly url: string;
  readonly requests: ProxiedRequest[];
  /** Answers the next `times` (default 1) requests matching with 503 SlowDown, with `Retry-After` when given. */
  slowDown(match: { method?: string; pathIncludes?: string }, opts?: { times?: number; retryAfterSeconds?: number }): void;
  stop(): Promise<void>;
}

export interface ProxiedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  status: number;
  at: number;
}

const SLOW_DOWN = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';

export async function startS3FaultProxy(target: string): Promise<S3FaultProxy> {
  const to = new URL(target);
  const requests: ProxiedRequest[] = [];
  const faults: { method?: string; pathIncludes?: string; times: number; retryAfterSeconds?: number }[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const entry: ProxiedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, status: 0, at: Date.now() };
    requests.push(entry);
    const fault = faults.find((f) => f.times > 0 && (!f.method || f.method === entry.method) && (!f.pathIncludes || entry.path.includes(f.pathIncludes)));
    if (fault) {
      fault.times--;
      entry.status = 503;
      req.resume();
      res.writeHead(503, {
        'content-type': 'application/xml',
        'content-length': Buffer.byteLength(SLOW_DOWN),
        ...(fault.retryAfterSeconds === undefined ? {} : { 'retry-after': String(fault.retryAfterSeconds) }),
      });
      res.end(SLOW_DOWN);
      return;
    }
    const upstream = httpRequest({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      entry.status = up.statusCode ?? 0;
      res.writeHead(up.statusCode ?? 502, up.headers);
      pipeline(up, res).catch(() => res.destroy());
    });
    upstream.on('error', () => res.destroy());
    pipeline(req, upstream).catch(() => upstream.destroy());
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    slowDown(match, opts = {}) {
      faults.push({ ...match, times: opts.times ?? 1, ...(opts.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: opts.retryAfterSeconds }) });
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
