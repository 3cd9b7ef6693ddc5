import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * Longest wait for a refusal to reach the kernel before the socket is destroyed anyway. The refusal is a
 * few hundred bytes, so this only matters when the client has stopped reading.
 */
const FLUSH_GRACE_MS = 1000;

function rawEnvelope(status: number, code: string, message: string): string {
  const body = JSON.stringify({ errors: [{ code, message, detail: null }] });
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
  );
}

/**
 * Sends the refusal, then destroys the socket as soon as it is flushed. Ending our side is not enough: the
 * server allows half-open sockets, so a client that keeps sending would keep its connection slot, and Node's
 * parser would go on handing the routes requests that arrive after the refusal.
 */
function refuseAndClose(socket: Duplex, answer: string): void {
  const timer = setTimeout(() => socket.destroy(), FLUSH_GRACE_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.end(answer, () => socket.destroy());
}

/**
 * Answers requests Node's HTTP parser refuses (oversized headers, malformed request lines, unknown methods,
 * header or request timeouts) with the spec error envelope instead of a bare status line, then closes.
 * Install with `server.on('clientError', answerClientError)`.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // A response already started on this socket (Node internals: `_httpMessage`) cannot take another.
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'request headers too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'request not received in time']
        : [400, 'malformed HTTP request'];
  refuseAndClose(socket, rawEnvelope(status, 'UNSUPPORTED', message));
}

/** `CONNECT` is for proxies; the mirror is not one. Install with `server.on('connect', refuseConnect)`. */
export function refuseConnect(_req: unknown, socket: Duplex): void {
  refuseAndClose(socket, rawEnvelope(405, 'UNSUPPORTED', 'the mirror is not a proxy'));
}
