import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateCa, issueServingCert } from '../../src/webhook/certs.js';

export interface TestCa {
  cert: string;
  key: string;
}

export function testCa(name = 'mirrorgate test CA'): TestCa {
  return generateCa({ now: Date.now(), validityMs: 86_400_000, commonName: name });
}

/** Issues a serving certificate for localhost / 127.0.0.1 and writes `tls.crt` and `tls.key` into `dir`. */
export async function writeServingCert(dir: string, ca: TestCa): Promise<{ cert: string; key: string; fingerprint: string }> {
  const pair = issueServingCert(ca, { now: Date.now(), validityMs: 86_400_000, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const cert = join(dir, 'tls.crt');
  const key = join(dir, 'tls.key');
  // Key first: a watcher that fires between the two writes sees a mismatched pair and keeps the old one.
  await writeFile(key, pair.key);
  await writeFile(cert, pair.cert);
  return { cert, key, fingerprint: new X509Certificate(pair.cert).fingerprint256 };
}

/** A skopeo/containers `--cert-dir`: a directory holding the CA as `ca.crt`. */
export async function writeCertDir(dir: string, ca: TestCa): Promise<string> {
  await writeFile(join(dir, 'ca.crt'), ca.cert);
  return dir;
}
