import type { Command } from 'commander';
import { createLogger } from '../common/logger.js';
import { ENV_OVERRIDES, loadConfig, parseUpstreamSpecs, type RawConfig } from '../config/load.js';
import { ConfigError } from '../config/load.js';
import { MirrorServer } from './server.js';
import { onShutdown } from '../common/on-shutdown.js';

interface MirrorFlags {
  config?: string;
  listen?: string;
  storage?: string;
  upstream?: string[];
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Flags become a raw config tree applied over the file and the environment. */
export function mirrorFlagOverrides(flags: MirrorFlags): { overrides: RawConfig; problems: string[] } {
  const problems: string[] = [];
  const mirror: RawConfig = {};
  if (flags.listen) mirror.listen = flags.listen;
  if (flags.storage) mirror.storage = { path: flags.storage };
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
      const logger = createLogger({ level: config.log.level });
      const server = new MirrorServer(config, { logger });
      const { url } = await server.start();
      process.stderr.write(`mirrorgate mirror listening on ${url} (storage ${server.storage.description}); mirroring ${server.upstreams.hosts.map((h) => `${h} -> ${config.upstreams[h]?.url ?? '?'}`).join(', ')}\n`);
      onShutdown(logger, () => server.stop());
    });
}
