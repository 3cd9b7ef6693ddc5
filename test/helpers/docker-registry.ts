import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { stringify } from 'yaml';
import { freePort, makeTempDir } from './tmp.js';
import { reapOnExit } from './reap-children.js';

/**
 * Debian's real `docker-registry` (distribution 2.8) on 127.0.0.1, with a throw-away filesystem store.
 * Used as the upstream in integration tests and as the baseline in benchmarks.
 */

export interface DockerRegistryOptions {
  /** Pull-through cache mode (distribution's own proxy), e.g. `{ remoteurl: front.url }`. Push is refused then. */
  proxy?: { remoteurl: string; username?: string; password?: string };
  /** Port to listen on; a free one by default. */
  port?: number;
  /** distribution log level (default `warn`). */
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
  /** Keep the access log (one line per request, on stderr/logs()). Off by default. */
  accessLog?: boolean;
  /** How long to wait for `GET /v2/` to answer (default 15 s). */
  startTimeoutMs?: number;
  /** Require HTTP Basic auth against this htpasswd file (bcrypt entries): the registry answers Basic challenges. */
  htpasswd?: string;
  /**
   * distribution's `s3` storage driver instead of the filesystem (path-style, v4 signatures, over plain HTTP
   * for a loopback gateway); `redirect` off streams blobs through the registry, on answers 307s.
   */
  s3?: { endpoint: string; region: string; bucket: string; accessKey: string; secretKey: string; rootDirectory: string; redirect?: boolean };
  /** Binary to run (default `/usr/bin/docker-registry`, or `$DOCKER_REGISTRY_BIN`). */
  binary?: string;
}

export interface DockerRegistry {
  /** `http://127.0.0.1:PORT` (no trailing slash). */
  readonly url: string;
  /** `127.0.0.1:PORT`, for image references such as `docker://127.0.0.1:PORT/library/x:1`. */
  readonly host: string;
  readonly port: number;
  /** The filesystem storage driver's root directory. */
  readonly storageDir: string;
  readonly pid: number | undefined;
  /** Everything the process wrote to stdout and stderr so far (the last 1 MiB). */
  logs(): string;
  /** SIGTERM, then SIGKILL after `killAfterMs` (default 3 s); removes the temp dir. Idempotent. */
  stop(killAfterMs?: number): Promise<void>;
}

const LOG_LIMIT = 1 << 20;


export async function startDockerRegistry(opts: DockerRegistryOptions = {}): Promise<DockerRegistry> {
  // A port from freePort() can be taken before the registry binds it: retry on "address already in use".
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts, opts.port ?? (await freePort()));
    } catch (err) {
      if (opts.port !== undefined || attempt >= 3 || !(err instanceof AddressInUseError)) throw err;
    }
  }
}

class AddressInUseError extends Error {}

async function startOnce(opts: DockerRegistryOptions, port: number): Promise<DockerRegistry> {
  const dir = await makeTempDir('mirrorgate-docker-registry-');
  const storageDir = join(dir.path, 'storage');
  await mkdir(storageDir);
  const host = `127.0.0.1:${port}`;
  const s3 = opts.s3;
  const store: Record<string, unknown> = s3
    ? {
        s3: {
          region: s3.region,
          regionendpoint: s3.endpoint,
          bucket: s3.bucket,
          accesskey: s3.accessKey,
          secretkey: s3.secretKey,
          rootdirectory: s3.rootDirectory,
          secure: s3.endpoint.startsWith('https:'),
          v4auth: true,
        },
        redirect: { disable: !s3.redirect },
      }
    : { filesystem: { rootdirectory: storageDir } };
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: opts.logLevel ?? 'warn', accesslog: { disabled: !opts.accessLog } },
    storage: {
      ...store,
      delete: { enabled: true },
      // No background upload purging or read-only toggling during a test.
      maintenance: { uploadpurging: { enabled: false } },
    },
    // A fixed secret silences the "No HTTP secret provided" warning.
    http: { addr: host, secret: 'mirrorgate-test-secret', debug: { addr: '' } },
    health: { storagedriver: { enabled: false } },
  };
  if (opts.proxy) {
    const proxy: Record<string, string> = { remoteurl: opts.proxy.remoteurl };
    if (opts.proxy.username !== undefined) proxy.username = opts.proxy.username;
    if (opts.proxy.password !== undefined) proxy.password = opts.proxy.password;
    config.proxy = proxy;
  }
  if (opts.htpasswd) config.auth = { htpasswd: { realm: 'test-registry', path: opts.htpasswd } };
  const configPath = join(dir.path, 'config.yml');
  await writeFile(configPath, stringify(config));

  // REGISTRY_* variables override the config file: keep the caller's environment out.
  const env: NodeJS.ProcessEnv = {};
  // AWS_* too: the s3 driver's SDK reads them (a CA bundle it cannot load is a panic at start).
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('REGISTRY_') && !k.startsWith('AWS_')) env[k] = v;

  const binary = opts.binary ?? process.env.DOCKER_REGISTRY_BIN ?? '/usr/bin/docker-registry';
  const child = spawn(binary, ['serve', configPath], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  reapOnExit(child);
  let log = '';
  const append = (chunk: Buffer): void => {
    log += chunk.toString('utf8');
    if (log.length > LOG_LIMIT) log = log.slice(log.length - LOG_LIMIT);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
    child.once('error', (err) => {
      spawnError = err;
      resolve();
    });
  });

  let stopped = false;
  const stop = async (killAfterMs = 3000): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (exited === undefined && spawnError === undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      await exitPromise;
      clearTimeout(timer);
    }
    await dir.cleanup();
  };

  const url = `http://${host}`;
  const deadline = Date.now() + (opts.startTimeoutMs ?? 15_000);
  try {
    for (;;) {
      if (spawnError) throw new Error(`cannot run ${binary}: ${spawnError.message}`);
      if (exited) {
        if (/address already in use/i.test(log)) throw new AddressInUseError(`port ${port} is taken`);
        throw new Error(`docker-registry exited (${exited.code ?? exited.signal}) before answering:\n${log}`);
      }
      if (await answers(`${url}/v2/`)) break;
      if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${url}/v2/ in time:\n${log}`);
      await Promise.race([sleep(50), exitPromise]);
    }
  } catch (err) {
    await stop(500);
    throw err;
  }

  return {
    url,
    host,
    port,
    storageDir,
    get pid() {
      return child.pid;
    },
    logs: () => log,
    stop,
  };
}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await request(url, { method: 'GET', headersTimeout: 1000, bodyTimeout: 1000 });
    await res.body.dump();
    return res.statusCode === 200 || res.statusCode === 401;
  } catch {
    return false;
  }
}
