import type { Clock } from '../../src/common/clock.js';
import { silentLogger, type Logger } from '../../src/common/logger.js';
import { loadConfig, type RawConfig } from '../../src/config/load.js';
import { MirrorServer, type MirrorServerDeps } from '../../src/mirror/server.js';
import { makeTempDir, type TempDir } from './tmp.js';

export interface TestMirror {
  url: string;
  /** `127.0.0.1:PORT`, for image references. */
  host: string;
  server: MirrorServer;
  storage: TempDir;
  stop(): Promise<void>;
}

/** Starts the mirror in-process on a free loopback port with a temp storage directory. */
export async function startMirror(opts: {
  upstreams: Record<string, string | RawConfig>;
  clock?: Clock;
  logger?: Logger;
  config?: RawConfig;
  storage?: TempDir;
  /** Environment the mirror reads credentials from (default: none). */
  env?: NodeJS.ProcessEnv;
  /** Extra server dependencies (e.g. a counting password verifier). */
  deps?: Partial<MirrorServerDeps>;
}): Promise<TestMirror> {
  const storage = opts.storage ?? (await makeTempDir('mirrorgate-cache-'));
  const upstreams = Object.fromEntries(Object.entries(opts.upstreams).map(([h, u]) => [h, typeof u === 'string' ? { url: u } : u]));
  const config = loadConfig({
    overrides: { ...(opts.config ?? {}), upstreams, mirror: { listen: '127.0.0.1:0', storage: { path: storage.path }, ...((opts.config?.mirror as RawConfig) ?? {}) } },
  });
  const deps = { logger: opts.logger ?? silentLogger(), env: opts.env ?? {}, ...(opts.clock ? { clock: opts.clock } : {}) };
  const server = new MirrorServer(config, { ...deps, ...(opts.deps ?? {}) });
  let port: number;
  let url: string;
  try {
    ({ port, url } = await server.start());
  } catch (err) {
    await server.stop(0);
    if (!opts.storage) await storage.cleanup();
    throw err;
  }
  let stopped = false;
  return {
    url, // https:// when the config has mirror.tls
    host: `127.0.0.1:${port}`,
    server,
    storage,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.stop(1000);
      if (!opts.storage) await storage.cleanup();
    },
  };
}
