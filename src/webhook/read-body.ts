import type { IncomingMessage } from 'node:http';

/** Why a body was not read, with body-parser's `type` and status, so both ways into the webhook map it alike. */
export class BodyReadError extends Error {
  constructor(
    readonly status: number,
    readonly type: 'entity.too.large' | 'request.aborted',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Reads the body of a request without Content-Encoding, refusing more than `limit` bytes, as express.raw does
 * (raw-body): 413 before reading when Content-Length already says too much, 413 as soon as more arrives, and on
 * an error the request is left paused. One chunk (a review usually fits in one TLS record) is returned as is.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number.parseInt(declared, 10) > limit) {
      reject(new BodyReadError(413, 'entity.too.large', 'request entity too large'));
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      req.off('close', cleanup);
    };
    const fail = (err: Error): void => {
      cleanup();
      req.unpipe();
      req.pause();
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > limit) fail(new BodyReadError(413, 'entity.too.large', 'request entity too large'));
      else chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received));
    };
    const onError = (err: Error): void => fail(err);
    const onAborted = (): void => fail(new BodyReadError(400, 'request.aborted', 'request aborted'));
    req.on('aborted', onAborted);
    req.on('close', cleanup);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}
