import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type Forge from 'node-forge';

const require = createRequire(import.meta.url);
let loaded: typeof Forge | undefined;

/**
 * node-forge, loaded on first use: the mirror's processes and the commands that make no certificate never
 * load it (about 11 MB of RSS each), though they import this file for its names and dates.
 */
function forge(): typeof Forge {
  return (loaded ??= require('node-forge') as typeof Forge);
}

/** A CA and the serving certificate it signed, all PEM. */
export interface CertBundle {
  caCert: string;
  caKey: string;
  cert: string;
  key: string;
}

export interface CertOptions {
  /** Validity start, ms since the epoch (from the injected clock). */
  now: number;
  validityMs: number;
}

function serial(): string {
  // Positive 16-byte serial (the top bit cleared so DER keeps it positive).
  const b = randomBytes(16);
  b[0]! &= 0x7f;
  return b.toString('hex');
}

function keyPair(): Forge.pki.rsa.KeyPair {
  // node-forge hands RSA key generation to Node's crypto when it can, so this is fast.
  return forge().pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
}

function base(cert: Forge.pki.Certificate, opts: CertOptions): void {
  cert.serialNumber = serial();
  // Back-date a little: clocks in a cluster are not exactly in step.
  cert.validity.notBefore = new Date(opts.now - 5 * 60_000);
  cert.validity.notAfter = new Date(opts.now + opts.validityMs);
}

export function generateCa(opts: CertOptions & { commonName?: string }): { cert: string; key: string } {
  const keys = keyPair();
  const cert = forge().pki.createCertificate();
  base(cert, opts);
  cert.publicKey = keys.publicKey;
  const subject = [{ name: 'commonName', value: opts.commonName ?? 'mirrorgate webhook CA' }, { name: 'organizationName', value: 'mirrorgate' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge().md.sha256.create());
  return { cert: forge().pki.certificateToPem(cert), key: forge().pki.privateKeyToPem(keys.privateKey) };
}

export function issueServingCert(
  ca: { cert: string; key: string },
  opts: CertOptions & { dnsNames: readonly string[]; ipAddresses?: readonly string[] },
): { cert: string; key: string } {
  const caCert = forge().pki.certificateFromPem(ca.cert);
  const caKey = forge().pki.privateKeyFromPem(ca.key);
  const keys = keyPair();
  const cert = forge().pki.createCertificate();
  base(cert, opts);
  cert.publicKey = keys.publicKey;
  cert.setSubject([{ name: 'commonName', value: opts.dnsNames[0] ?? 'mirrorgate-webhook' }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [...opts.dnsNames.map((value) => ({ type: 2, value })), ...(opts.ipAddresses ?? []).map((ip) => ({ type: 7, ip }))],
    },
  ]);
  cert.sign(caKey, forge().md.sha256.create());
  return { cert: forge().pki.certificateToPem(cert), key: forge().pki.privateKeyToPem(keys.privateKey) };
}

/** The DNS names the API server may use to reach the webhook's Service, plus local names for development. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`, `${service}.${namespace}`, service, 'localhost'];
}

export const LOCAL_IPS = ['127.0.0.1', '::1'];

export function generateBundle(opts: CertOptions & { dnsNames: readonly string[]; ipAddresses?: readonly string[]; caValidityMs?: number }): CertBundle {
  const ca = generateCa({ now: opts.now, validityMs: opts.caValidityMs ?? opts.validityMs * 2 });
  const serving = issueServingCert(ca, opts);
  return { caCert: ca.cert, caKey: ca.key, cert: serving.cert, key: serving.key };
}

/** Expiry of a PEM certificate (ms), or undefined when it does not parse. */
export function notAfter(certPem: string): number | undefined {
  try {
    const ms = Date.parse(new X509Certificate(certPem).validTo);
    return Number.isNaN(ms) ? undefined : ms;
  } catch {
    return undefined;
  }
}

/** True when the key and certificate belong together and the certificate was signed by the CA. */
export function isConsistent(bundle: Partial<CertBundle>): bundle is CertBundle {
  if (!bundle.caCert || !bundle.caKey || !bundle.cert || !bundle.key) return false;
  try {
    const ca = new X509Certificate(bundle.caCert);
    const cert = new X509Certificate(bundle.cert);
    return cert.checkPrivateKey(createPrivateKey(bundle.key)) && ca.checkPrivateKey(createPrivateKey(bundle.caKey)) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

/** True when the CA key belongs to the CA certificate. */
export function caMatches(caCert: string, caKey: string): boolean {
  try {
    return new X509Certificate(caCert).checkPrivateKey(createPrivateKey(caKey));
  } catch {
    return false;
  }
}
