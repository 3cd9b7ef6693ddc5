import { createHash } from 'node:crypto';
import { open, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { streamBody } from '../../../../src/mirror/http/stream-body.js';
import { FileBody } from '../../../../src/mirror/store/fs/file-body.js';
import { Cleanup, makeTempDir } from '../../../helpers/tmp.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Serves `file` with a FileBody through streamBody; resolves with the URL and each response's outcome. */
async function serveFile(file: string, size: number): Promise<{ url: string; outcomes: Array<Promise<string>> }> {
  const outcomes: Array<Promise<string>> = [];
  const server = http.createServer((req, res) => {
    outcomes.push(
      (async () => {
        res.writeHead(200, { 'content-length': String(size) });
        try {
          await streamBody(new FileBody(await open(file), 0, size - 1, 64 * 1024), res);
          return 'finished';
        } catch (err) {
          return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        }
      })(),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.add(() => new Promise<void>((r) => server.close(() => r())));
  cleanup.add(() => void server.closeAllConnections());
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, outcomes };
}

async function randomFile(size: number): Promise<{ file: string; sha: string }> {
  const dir = cleanup.add(await makeTempDir('mg-stream-body-'));
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) bytes.writeUInt32LE((Math.imul(i, 2654435761) ^ (i >>> 7)) >>> 0, Math.min(i, size - 4));
  const file = path.join(dir.path, 'blob');
  await writeFile(file, bytes);
  return { file, sha: createHash('sha256').update(bytes).digest('hex') };
}

describe('streamBody with a body that reuses its buffers', () => {
  it('a slow client still gets every byte right (chunks are reused only once the socket took them)', async () => {
    // More than the kernel's socket buffers hold on loopback, so writes wait in the socket with their buffers.
    const size = 40 * 1024 * 1024 + 3;
    const { file, sha } = await randomFile(size);
    const { url, outcomes } = await serveFile(file, size);
    const got = await new Promise<string>((resolve, reject) => {
      http.get(url, (res) => {
        const hash = createHash('sha256');
        // A pause once the first bytes are in, so the server's writes queue behind a full socket, then the rest.
        let first = true;
        res.on('data', (c: Buffer) => {
          hash.update(c);
          if (!first) return;
          first = false;
          res.pause();
          setTimeout(() => res.resume(), 300);
        });
        res.on('end', () => resolve(hash.digest('hex')));
        res.on('error', reject);
      });
    });
    expect(got).toBe(sha);
    expect(await outcomes[0]).toBe('finished');
  });

  it('a client that leaves mid-body ends the stream as a premature close, and the file is released', async () => {
    const size = 16 * 1024 * 1024;
    const { file } = await randomFile(size);
    const { url, outcomes } = await serveFile(file, size);
    await new Promise<void>((resolve) => {
      const req = http.get(url, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => undefined);
    });
    expect(await outcomes[0]).toBe('ERR_STREAM_PREMATURE_CLOSE');
  });
});
