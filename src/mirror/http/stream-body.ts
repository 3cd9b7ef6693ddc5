import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { recyclerOf } from '../../common/recycling-body.js';

/**
 * Writes a body to the response with backpressure. Unlike `pipeline`, a failure of the body does not
 * destroy the response: the caller can still answer with a clean error envelope when no byte has been
 * sent (headers are only flushed with the first chunk), or cut the connection when some have.
 * A client that goes away destroys the body, which releases its file or upstream download.
 * A body that reuses its buffers (`RecyclingBody`) gets each chunk back once the socket has taken it.
 */
export function streamBody(body: Readable, res: ServerResponse): Promise<void> {
  const recycle = recyclerOf(body);
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (err?: unknown): void => {
      if (settled) return;
      settled = true;
      body.off('data', onData);
      res.off('drain', onDrain);
      if (err) reject(err);
      else resolve();
    };
    const onData = (chunk: Buffer): void => {
      const more = recycle ? res.write(chunk, (err) => err || recycle(chunk)) : res.write(chunk);
      if (!more) body.pause();
    };
    const onDrain = (): void => void body.resume();
    body.once('error', (err) => settle(err));
    body.once('end', () => res.end());
    res.once('finish', () => settle());
    res.once('close', () => {
      if (res.writableFinished) return settle();
      body.destroy();
      settle(Object.assign(new Error('client closed the connection'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    });
    res.on('drain', onDrain);
    if (res.destroyed) {
      // The client left while the body was being opened.
      body.destroy();
      settle(Object.assign(new Error('client closed the connection'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
      return;
    }
    body.on('data', onData);
  });
}
