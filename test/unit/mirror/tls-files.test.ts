import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/common/logger.js';
import { MirrorMetrics } from '../../../src/mirror/metrics.js';
import { TlsFiles } from '../../../src/mirror/tls/tls-files.js';
import { testCa, writeServingCert } from '../../helpers/test-certs.js';
import { makeTempDir, useCleanup } from '../../helpers/tmp.js';

const cleanup = useCleanup();

describe('TlsFiles', () => {
  it('takes a new pair only when the key belongs to the certificate', async () => {
    const dir = cleanup.add(await makeTempDir());
    const ca = testCa();
    const first = await writeServingCert(dir.path, ca);
    const files = new TlsFiles({ cert: first.cert, key: first.key }, { logger: silentLogger() });
    const seen: string[] = [];
    files.onChange((p) => seen.push(new X509Certificate(p.cert).fingerprint256));
    const fingerprint = (): string => new X509Certificate(files.current.cert).fingerprint256;
    expect(fingerprint()).toBe(first.fingerprint);
    expect(files.reload()).toBe(false);

    // Half a rotation: the new key is written, the certificate not yet.
    const oldCert = readFileSync(first.cert, 'utf8');
    const second = await writeServingCert(dir.path, ca);
    const newCert = readFileSync(second.cert, 'utf8');
    writeFileSync(first.cert, oldCert);
    expect(files.reload()).toBe(false);
    expect(fingerprint()).toBe(first.fingerprint);

    writeFileSync(first.cert, newCert);
    expect(files.reload()).toBe(true);
    expect(fingerprint()).toBe(second.fingerprint);
    expect(seen).toEqual([second.fingerprint]);
    files.close();
  });

  it('exports the expiry of the certificate in use, and of its replacement after a reload', async () => {
    const dir = cleanup.add(await makeTempDir());
    const ca = testCa();
    const first = await writeServingCert(dir.path, ca);
    const metrics = new MirrorMetrics();
    const exported = async (): Promise<number> => (await metrics.certNotAfter.get()).values[0]!.value;
    const notAfter = (file: string): number => Date.parse(new X509Certificate(readFileSync(file)).validTo) / 1000;
    const files = new TlsFiles({ cert: first.cert, key: first.key }, { logger: silentLogger(), metrics });
    expect(await exported()).toBe(notAfter(first.cert));
    expect(await exported()).toBeGreaterThan(Date.now() / 1000);

    // A later certificate (issued a few seconds on), then an unusable file: the gauge follows the pair in use.
    await new Promise((r) => setTimeout(r, 1100));
    const before = await exported();
    await writeServingCert(dir.path, ca);
    expect(files.reload()).toBe(true);
    const renewed = notAfter(first.cert);
    expect(renewed).toBeGreaterThan(before);
    expect(await exported()).toBe(renewed);
    writeFileSync(first.cert, 'not a certificate');
    expect(files.reload()).toBe(false);
    expect(await exported()).toBe(renewed);
    files.close();
  });

  it('refuses to start with unreadable or unusable files', async () => {
    const dir = cleanup.add(await makeTempDir());
    writeFileSync(`${dir.path}/c`, 'nope');
    writeFileSync(`${dir.path}/k`, 'nope');
    expect(() => new TlsFiles({ cert: `${dir.path}/c`, key: `${dir.path}/k` }, { logger: silentLogger() })).toThrow(/^mirror\.tls: /);
    expect(() => new TlsFiles({ cert: `${dir.path}/missing`, key: `${dir.path}/k` }, { logger: silentLogger() })).toThrow(/ENOENT/);
  });
});
