import cluster from 'node:cluster';
import type { Command } from 'commander';
import { createLogger } from '../common/logger.js';
import { ENV_OVERRIDES, loadConfig, parseUpstreamSpecs, type RawConfig } from '../config/load.js';
import { ConfigError } from '../config/load.js';
import { onShutdown } from '../common/on-shutdown.js';
import { runPrimary } from './workers/run-primary.js';
import { workerCount } from './workers/worker-count.js';

interface MirrorFlags {
  config?: string;
  listen?: string;
  storage?: string;
  upstream?: string[];
  workers?: string;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Flags become a raw config tree applied over the file and the environment. */
export function mirrorFlagOverrides(flags: MirrorFlags): { overrides: RawConfig; problems: string[] } {
  const problems: string[] = [];
  const mirror: RawConfig = {};
  if (flags.listen) mirror.listen = flags.listen;
  if (flags.storage) mirror.storage = { path: flags.storage };
  if (flags.workers !== undefined) {
    if (flags.workers === 'auto') mirror.workers = 'auto';
    else if (/^[0-9]+$/.test(flags.workers)) mirror.workers = Number(flags.workers);
    else problems.push(`--workers: a number or auto, not ${JSON.stringify(flags.workers)}`);
  }
  const overrides: RawConfig = {};
  if (Object.keys(mirror).length > 0) overrides.mirror = mirror;
  if (flags.upstream?.length) overrides.upstreams = parseUpstreamSpecs(flags.upstream, problems);
  return { overrides, problems };
}

export function registerMirrorCommand(program: Command): void {
  program
    .command('mirror')
    .description('run the pull-through cache registry')
    .option('-c, --config <file>', 'YAML configuration file (env MIRRORGATE_CONFIG)')
    .option('--listen <addr>', 'listen address, e.g. :5000 or 127.0.0.1:5000')
    .option('--storage <dir>', 'cache directory')
    .option('--upstream <host=url>', 'an upstream registry (repeatable; replaces the configured list)', collect)
    .option('--workers <n>', 'worker processes serving the registry: a number or auto (one per core)')
    .addHelpText(
      'after',
      `\nEnvironment overrides (flags win over them, they win over the file):\n${Object.entries(ENV_OVERRIDES)
        .map(([k, v]) => `  ${k.padEnd(28)} ${v.describe}`)
        .join('\n')}`,
    )
    .action(async (flags: MirrorFlags) => {
      const { overrides, problems } = mirrorFlagOverrides(flags);
      let config;
      try {
        if (problems.length) throw new ConfigError(problems, 'command line');
        config = loadConfig({ file: flags.config ?? process.env.MIRRORGATE_CONFIG, env: process.env, overrides });
      } catch (err) {
        process.stderr.write(`${(err as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      // The server's modules are loaded here, not at the top: a primary of workers serves no HTTP and stays small.
      if (cluster.isWorker) {
        const { runWorker } = await import('./workers/run-worker.js');
        await runWorker(config);
        return;
      }
      const logger = createLogger({ level: config.log.level });
      const workers = workerCount(config.mirror.workers);
      if (workers > 1) {
        let primary;
        try {
          primary = await runPrimary(config, workers, logger);
        } catch (err) {
          process.stderr.write(`${(err as Error).message}\n`);
          process.exitCode = 1;
          return;
        }
        process.stderr.write(`mirrorgate mirror listening on ${primary.url} (${workers} workers, storage ${primary.description}); mirroring ${Object.entries(config.upstreams).map(([h, u]) => `${h} -> ${u.url}`).join(', ')}\n`);
        onShutdown(logger, primary.stop);
        return;
      }
      const { MirrorServer } = await import('./server.js');
      const server = new MirrorServer(config, { logger });
      const { url } = await server.start();
      process.stderr.write(`mirrorgate mirror listening on ${url} (storage ${server.storage.description}); mirroring ${server.upstreams.hosts.map((h) => `${h} -> ${config.upstreams[h]?.url ?? '?'}`).join(', ')}\n`);
      onShutdown(logger, () => server.stop());
    });
}
