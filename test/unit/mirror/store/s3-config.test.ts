import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/common/clock.js';
import { silentLogger } from '../../../../src/common/logger.js';
import { ConfigError, loadConfig, type RawConfig } from '../../../../src/config/load.js';
import { createStorage } from '../../../../src/mirror/store/create-storage.js';
import { FsStorage } from '../../../../src/mirror/store/fs/fs-storage.js';
import { createS3Client } from '../../../../src/mirror/store/s3/s3-client.js';
import { startupError, storageError } from '../../../../src/mirror/store/s3/s3-errors.js';
import { S3Storage } from '../../../../src/mirror/store/s3/s3-storage.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function load(s3: Record<string, unknown>) {
  return loadConfig({ overrides: { mirror: { storage: { path: '/var/lib/mirrorgate', s3 } } } as RawConfig }).mirror;
}

function problems(s3: Record<string, unknown>): string {
  try {
    load(s3);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.join('\n');
  }
  throw new Error('expected the configuration to be refused');
}

/** What createStorage needs besides the configuration, with an empty environment. */
function deps(clock: ManualClock) {
  return { clock, logger: silentLogger(), registry: new Registry(), env: {} };
}

describe('mirror.storage.s3', () => {
  it('has defaults for everything but the bucket, and keeps the prefix with one trailing slash', () => {
    const s3 = load({ bucket: 'mirror-cache', prefix: 'team/mirror' }).storage.s3!;
    expect(s3).toMatchObject({ bucket: 'mirror-cache', prefix: 'team/mirror/', forcePathStyle: false, redirect: false, redirectTtl: 20 * 60_000, partSize: 8 * 1024 * 1024, maxAttempts: 5 });
    expect(s3.timeouts).toEqual({ connect: 10_000, idle: 60_000 });
    expect(load({ bucket: 'b12', prefix: 'x/' }).storage.s3!.prefix).toBe('x/');
    expect(load({ bucket: 'b12' }).storage.s3!.prefix).toBe('');
  });

  it('refuses bad buckets, prefixes, half credentials, and part sizes S3 cannot take', () => {
    expect(problems({ bucket: 'No_Such' })).toMatch(/mirror\.storage\.s3\.bucket: not an S3 bucket name/);
    for (const prefix of ['/abs', '../up', 'a/../b', 'a//b', 'a b', '.hidden']) expect(problems({ bucket: 'bkt', prefix })).toMatch(/mirror\.storage\.s3\.prefix: a key prefix/);
    expect(problems({ bucket: 'bkt', accessKeyId: { value: 'AK' } })).toMatch(/mirror\.storage\.s3\.secretAccessKey: give both accessKeyId and secretAccessKey, or neither/);
    expect(problems({ bucket: 'bkt', partSize: '4MiB' })).toMatch(/mirror\.storage\.s3\.partSize: between 5MiB and 64MiB/);
    expect(problems({ bucket: 'bkt', redirectTtl: '8d' })).toMatch(/mirror\.storage\.s3\.redirectTtl: between 1s and 7d/);
    expect(problems({ bucket: 'bkt', endpoint: 'ftp://x' })).toMatch(/mirror\.storage\.s3\.endpoint/);
    expect(problems({ bucket: 'bkt', region: 'Not A Region' })).toMatch(/mirror\.storage\.s3\.region: not a region name/);
    expect(problems({ bucket: 'bkt', unknown: 1 })).toMatch(/mirror\.storage\.s3/);
  });

  it('createStorage picks the object store when it is configured, the filesystem otherwise', () => {
    const clock = new ManualClock(0);
    const s3 = createStorage(load({ bucket: 'mirror-cache', endpoint: 'http://127.0.0.1:7480/', prefix: 'm' }), deps(clock));
    expect(s3).toBeInstanceOf(S3Storage);
    expect(s3.description).toBe('s3://mirror-cache/m/ at http://127.0.0.1:7480');
    (s3 as S3Storage).close();
    expect(createStorage(loadConfig({}).mirror, deps(clock))).toBeInstanceOf(FsStorage);
  });

  it('createStorage hands out presigned blob URLs only when redirect is on, valid redirectTtl', async () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const keys = { accessKeyId: { value: 'AK' }, secretAccessKey: { value: 'SK' }, endpoint: 'http://127.0.0.1:7480', forcePathStyle: true };
    const on = createStorage(load({ bucket: 'bkt', prefix: 'p', redirect: true, redirectTtl: '5m', ...keys }), deps(new ManualClock(0))) as S3Storage;
    const url = new URL((await on.blobRedirectUrl!(digest))!);
    expect(url.pathname).toBe(`/bkt/p/blobs/sha256/${'a'.repeat(64)}`);
    expect(url.searchParams.get('X-Amz-Expires')).toBe('300');
    expect(url.searchParams.get('X-Amz-Credential')).toMatch(/^AK\//);
    on.close();
    const off = createStorage(load({ bucket: 'bkt', ...keys }), deps(new ManualClock(0))) as S3Storage;
    expect(off.blobRedirectUrl).toBeUndefined();
    off.close();
  });
});

describe('createS3Client', () => {
  it('takes the region from the configuration, else AWS_REGION, else us-east-1; path style and retries as configured', async () => {
    const config = load({ bucket: 'bkt', endpoint: 'https://rgw.example:8443', forcePathStyle: true, maxAttempts: 7 }).storage.s3!;
    const fromEnv = createS3Client(config, { AWS_REGION: 'eu-west-3' });
    expect(await fromEnv.config.region()).toBe('eu-west-3');
    expect(fromEnv.config.forcePathStyle).toBe(true);
    expect(await fromEnv.config.maxAttempts()).toBe(7);
    expect(fromEnv.config.retryMode).toBe('standard');
    fromEnv.destroy();
    const fallback = createS3Client(config, {});
    expect(await fallback.config.region()).toBe('us-east-1');
    fallback.destroy();
    const pinned = createS3Client(load({ bucket: 'bkt', region: 'ap-south-1' }).storage.s3!, { AWS_REGION: 'eu-west-3' });
    expect(await pinned.config.region()).toBe('ap-south-1');
    pinned.destroy();
  });

  it('reads keys from files and variables when it signs, so rotated secrets are picked up', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mg-s3-keys-'));
    dirs.push(dir);
    writeFileSync(path.join(dir, 'secret'), 'the-secret\n');
    const config = load({ bucket: 'bkt', accessKeyId: { env: 'MY_KEY_ID' }, secretAccessKey: { file: path.join(dir, 'secret') } }).storage.s3!;
    const client = createS3Client(config, { MY_KEY_ID: 'AKFROMENV' });
    const creds = await client.config.credentials();
    expect(creds).toMatchObject({ accessKeyId: 'AKFROMENV', secretAccessKey: 'the-secret' });
    expect(creds.expiration!.getTime()).toBeGreaterThan(Date.now());
    expect(creds.expiration!.getTime()).toBeLessThanOrEqual(Date.now() + 5 * 60_000);
    client.destroy();
  });
});

describe('object storage errors', () => {
  const sdkError = (name: string, status: number) => Object.assign(new Error(name === 'Unknown' ? 'socket hang up' : 'UnknownError'), { name, $metadata: { httpStatusCode: status }, $response: { huge: 'raw response' } });

  it('maps each start-up failure to one message naming what to fix', () => {
    const cases: [string, number, RegExp][] = [
      ['NoSuchBucket', 404, /bucket does not exist: create it, or fix mirror\.storage\.s3\.bucket$/],
      ['NotFound', 404, /bucket does not exist/],
      ['InvalidAccessKeyId', 403, /the access key is not known to the object store: check mirror\.storage\.s3\.accessKeyId \(or AWS_ACCESS_KEY_ID\)$/],
      ['SignatureDoesNotMatch', 403, /the secret key does not match the access key/],
      ['RequestTimeTooSkewed', 403, /this machine's clock is too far from the object store's/],
      ['AccessDenied', 403, /access denied: the credentials need list, read, write and delete on the bucket/],
      ['Forbidden', 403, /the object store refused the credentials$/],
      ['Unknown', 0, /cannot reach the object store: socket hang up \(Unknown\)$/],
    ];
    for (const [name, status, message] of cases) {
      const err = startupError(sdkError(name, status), 's3://bkt/ at http://x');
      expect(err.code).toBe('CONFIG_INVALID');
      expect(err.message).toMatch(/^object storage s3:\/\/bkt\/ at http:\/\/x: /);
      expect(err.message, name).toMatch(message);
    }
  });

  it('reports failures at run time as UNAVAILABLE, keeping a cause without the raw response', () => {
    const err = storageError(sdkError('SlowDown', 503), 'PUT k');
    expect(err).toMatchObject({ code: 'UNAVAILABLE', status: 503 });
    expect(err.message).toBe('object storage: PUT k failed: UnknownError (SlowDown, HTTP 503)');
    expect(err.cause).toMatchObject({ name: 'SlowDown', code: 'SlowDown', status: 503 });
    expect(err.cause).not.toHaveProperty('$response');
  });
});
