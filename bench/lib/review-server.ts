/**
 * The webhook bench's peers, each in its own process (started by review-servers.ts):
 *
 *   node --import tsx bench/lib/review-server.ts --serve floor|constant --cert-dir DIR --uid UID
 *
 * - `floor`: the least any webhook that reads the pod must do: read the body, `JSON.parse` it, answer
 *   `allowed` with the request's uid.
 * - `constant`: reads and drops the body, answers a constant AdmissionReview (TLS and HTTP only).
 *
 * Same certificate, TLS minimum version and keep-alive timeout as the webhook. The port is written to fd 3.
 */
import { readFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const ADMISSION = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' } as const;

async function main(): Promise<void> {
  const kind = opt('--serve');
  if (kind !== 'floor' && kind !== 'constant') throw new Error('--serve floor|constant');
  const certDir = opt('--cert-dir') ?? '';
  const cert = readFileSync(path.join(certDir, 'tls.crt'), 'utf8');
  const key = readFileSync(path.join(certDir, 'tls.key'), 'utf8');
  // The constant server echoes the uid it was started with (the bench's fixture's), so the client's check passes.
  const constant = JSON.stringify({ ...ADMISSION, response: { uid: opt('--uid') ?? '', allowed: true } });
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
  writeSync(3, `PORT ${(server.address() as AddressInfo).port}\n`);
  // Exit cleanly when the parent is done, so `--cpu-prof` can write the profile.
  process.once('SIGTERM', () => process.exit(0));
}

main().catch((err: unknown) => {
  process.stderr.write(`bench server: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
