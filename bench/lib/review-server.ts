/**
 * One server for the webhook bench, in its own process (started by review-servers.ts):
 *
 *   node [--import tsx] bench/lib/review-server.ts --serve webhook|floor|constant --cert-dir DIR --log LEVEL --uid UID [--dist DIR]
 *
 * - `webhook`: mirrorgate's webhook as `mirrorgate webhook` runs it (logging to stdout, default metrics), from
 *   the compiled `--dist DIR` (as deployed) or from src/ under tsx.
 * - `floor`: the least any webhook that reads the pod must do: read the body, `JSON.parse` it, answer
 *   `allowed` with the request's uid.
 * - `constant`: reads and drops the body, answers a constant AdmissionReview (TLS and HTTP only).
 *
 * All three use the same certificate, TLS minimum version and keep-alive timeout. The port is written to fd 3.
 */
import { readFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const ADMISSION = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' } as const;

async function startWebhookServer(cert: string, key: string, logLevel: string, dist: string | undefined): Promise<number> {
  const base = dist ?? path.resolve(import.meta.dirname, '..', '..', 'src');
  const load = <T>(file: string): Promise<T> => import(pathToFileURL(path.join(base, file)).href) as Promise<T>;
  const { systemClock } = await load<typeof import('../../src/common/clock.js')>('common/clock.js');
  const { createLogger, silentLogger } = await load<typeof import('../../src/common/logger.js')>('common/logger.js');
  const { configSchema } = await load<typeof import('../../src/config/schema.js')>('config/schema.js');
  const { ConfigStore } = await load<typeof import('../../src/webhook/config-store.js')>('webhook/config-store.js');
  const { WebhookMetrics } = await load<typeof import('../../src/webhook/metrics.js')>('webhook/metrics.js');
  const { startWebhook } = await load<typeof import('../../src/webhook/runtime.js')>('webhook/runtime.js');
  const { MemoryTlsSource } = await load<typeof import('../../src/webhook/tls-source.js')>('webhook/tls-source.js');

  const config = configSchema.parse({ webhook: { mirrorProbe: { enabled: false } } });
  // Logs go to stdout, as deployed; the bench points the child's stdout at /dev/null.
  const logger = logLevel === 'silent' ? silentLogger() : createLogger({ level: logLevel });
  const metrics = new WebhookMetrics({ defaultMetrics: true });
  const webhook = await startWebhook({
    configStore: new ConfigStore({}, { logger, metrics }, config),
    logger,
    clock: systemClock,
    metrics,
    listen: { host: '127.0.0.1', port: 0 },
    tls: new MemoryTlsSource({ cert, key }),
    health: { reachable: () => true },
  });
  return webhook.port;
}

async function startPeer(kind: 'floor' | 'constant', cert: string, key: string, uid: string): Promise<number> {
  // The constant server echoes the uid it was started with (the bench's fixture's), so the client's check passes.
  const constant = JSON.stringify({ ...ADMISSION, response: { uid, allowed: true } });
  const server =
    kind === 'floor'
      ? createServer({ cert, key, minVersion: 'TLSv1.2' }, (req, res) => {
          const chunks: Buffer[] = [];
          req.on('data', (c: Buffer) => chunks.push(c));
          req.on('end', () => {
            const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { request: { uid: string } };
            const answer = JSON.stringify({ ...ADMISSION, response: { uid: review.request.uid, allowed: true } });
            res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
            res.end(answer);
          });
        })
      : createServer({ cert, key, minVersion: 'TLSv1.2' }, (req, res) => {
          req.resume();
          req.on('end', () => {
            res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(constant) });
            res.end(constant);
          });
        });
  server.keepAliveTimeout = 100_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

async function main(): Promise<void> {
  const kind = opt('--serve');
  const certDir = opt('--cert-dir') ?? '';
  const cert = readFileSync(path.join(certDir, 'tls.crt'), 'utf8');
  const key = readFileSync(path.join(certDir, 'tls.key'), 'utf8');
  let port: number;
  if (kind === 'webhook') port = await startWebhookServer(cert, key, opt('--log') ?? 'info', opt('--dist'));
  else if (kind === 'floor' || kind === 'constant') port = await startPeer(kind, cert, key, opt('--uid') ?? '');
  else throw new Error('--serve webhook|floor|constant');
  writeSync(3, `PORT ${port}\n`);
  // Exit cleanly when the parent is done, so `--cpu-prof` can write the profile.
  process.once('SIGTERM', () => process.exit(0));
}

main().catch((err: unknown) => {
  process.stderr.write(`bench server: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
