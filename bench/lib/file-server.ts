/**
 * The bare Node peer of the warm-blob scenario, in its own process (started by `startFileServer`):
 *
 *   node --import tsx bench/lib/file-server.ts ROOT
 *
 * Serves the files under ROOT by streaming them (`fs.createReadStream(file)` piped into the response) and nothing else (no auth, no routing,
 * no digest check): what the embedded mirror is measured against, since it streams files with the same
 * runtime. The port is written to fd 3.
 */
import { createReadStream, writeSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

const root = path.resolve(process.argv[2] ?? '.');

const server = createServer((req, res) => {
  const file = path.join(root, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
  if (!file.startsWith(root + path.sep)) {
    res.writeHead(404).end();
    return;
  }
  stat(file).then(
    (s) => {
      if (!s.isFile()) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': s.size });
      if (req.method === 'HEAD') return void res.end();
      pipeline(createReadStream(file), res, () => undefined);
    },
    () => void res.writeHead(404).end(),
  );
});
server.keepAliveTimeout = 100_000;
server.listen(0, '127.0.0.1', () => writeSync(3, `PORT ${(server.address() as AddressInfo).port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
