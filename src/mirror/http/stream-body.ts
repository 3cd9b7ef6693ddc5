import type { Readable } from 'node:stream';
import type { Response } from 'express';

/**
 * Pipes a body to the response with backpressure. Unlike `pipeline`, a failure of the body does not
 * destroy the response: the caller can still answer with a clean error envelope when no byte has been
 * sent (headers are only flushed with the first chunk), or cut the connection when some have.
 * A client that goes away destroys the body, which releases its file or upstream download.
 */
export function streamBody(body: Readable, res: Response): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (err?: unknown): void => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve();
    };
    body.once('error', (err) => {
      body.unpipe(res);
      settle(err);
    });
    res.once('finish', () => settle());
    res.once('close', () => {
      if (res.writableFinished) return settle();
      body.destroy();
      settle(Object.assign(new Error('client closed the connection'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    });
    body.pipe(res);
  });
}
