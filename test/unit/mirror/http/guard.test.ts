import type { AddressInfo, Socket } from 'node:net';
import express from 'express';
import { Client } from 'undici';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../../src/common/logger.js';
import { loadConfig } from '../../../../src/config/load.js';
import { requestGuard } from '../../../../src/mirror/http/guard.js';
import { useCleanup } from '../../../helpers/tmp.js';

describe('requestGuard', () => {
  const cleanup = useCleanup();

  it('leaves no listener behind on a keep-alive connection: 30 pushes on one socket', async () => {
    const app = express();
    app.use(requestGuard(loadConfig({}).mirror.limits, createLogger({ level: 'silent' })));
    app.patch('/v2/team/app/blobs/uploads/:id', (req, res) => {
      req.resume();
      req.on('end', () => res.status(202).end());
    });
    const sockets: Socket[] = [];
    const server = app.listen(0, '127.0.0.1');
    server.on('connection', (s: Socket) => sockets.push(s));
    await new Promise((r) => server.once('listening', r));
    const client = new Client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    cleanup.add(async () => {
      await client.close();
      await new Promise((r) => server.close(r));
    });
    const baseline: number[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await client.request({ method: 'PATCH', path: `/v2/team/app/blobs/uploads/u${i}`, body: Buffer.alloc(1000, i) });
      await res.body.dump();
      expect(res.statusCode).toBe(202);
      if (i === 0) baseline.push(sockets[0]!.listenerCount('close'));
    }
    expect(sockets.length).toBe(1);
    expect(sockets[0]!.listenerCount('close')).toBe(baseline[0]);
  });
});
