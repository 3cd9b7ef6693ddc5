import type { Command } from 'commander';
import { Registry } from 'prom-client';
import { systemClock } from '../../common/clock.js';
import { MirrorgateError } from '../../common/errors.js';
import { createLogger } from '../../common/logger.js';
import { loadConfig, type RawConfig } from '../../config/load.js';
import { createStorage } from '../store/create-storage.js';
import { warmKeep } from '../warm/targets.js';
import { AccessTracker } from './access-tracker.js';
import { Collector, type CollectorOptions } from './collector.js';
import { formatPass, passToJson } from './report.js';
import { compileRetention } from './retention.js';

interface GcFlags {
  config?: string;
  storage?: string;
  dryRun?: boolean;
  force?: boolean;
  json?: boolean;
}

/**
 * `mirrorgate gc`: one cache pass (retention, size cap, free-space floor, unreferenced content, stale temp
 * files) on a storage directory, with the mirror's configuration. A running mirror does the same on its
 * own schedule; this command is for a mirror that is stopped, so it refuses while one holds the directory
 * (`--dry-run` only reads and is always allowed).
 */
export function registerGcCommand(program: Command): void {
  program
    .command('gc')
    .description('collect garbage and apply the size cap and retention policies to the cache directory (mirror stopped)')
    .option('-c, --config <file>', 'YAML configuration file (env MIRRORGATE_CONFIG)')
    .option('--storage <dir>', 'cache directory (default: mirror.storage.path)')
    .option('--dry-run', 'list what would be removed, remove nothing')
    .option('--force', 'run even though the directory looks in use by a running mirror')
    .option('--json', 'print the result as JSON')
    .action(async (flags: GcFlags) => {
      let config;
      try {
        const overrides: RawConfig = flags.storage ? { mirror: { storage: { path: flags.storage } } } : {};
        config = loadConfig({ file: flags.config ?? process.env.MIRRORGATE_CONFIG, env: process.env, overrides });
      } catch (err) {
        process.stderr.write(`${(err as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      const logger = createLogger({ level: config.log.level === 'info' ? 'warn' : config.log.level, destination: process.stderr });
      const storage = createStorage(config.mirror, { clock: systemClock, logger, registry: new Registry(), env: process.env });
      const m = config.mirror;
      const options: CollectorOptions = {
        maxSize: m.storage.maxSize,
        minFreeSpace: m.storage.minFreeSpace,
        highWater: m.cache.highWater,
        lowWater: m.cache.lowWater,
        unreferencedGrace: m.cache.unreferencedGrace,
        staleTempAge: m.cache.staleTempAge,
        policies: compileRetention(m.retention),
        keep: warmKeep(m.warm.images),
      };
      let lock;
      if (!flags.dryRun) {
        try {
          lock = await storage.claim('gc', { force: flags.force ?? false });
        } catch (err) {
          if (err instanceof MirrorgateError && err.code === 'STORAGE_LOCKED') {
            process.stderr.write(`mirrorgate gc: ${err.message}; the running mirror collects on its own schedule (mirror.cache.gcInterval). Use --dry-run to look, or --force.\n`);
            process.exitCode = 3;
            await storage.close?.();
            return;
          }
          throw err;
        }
      } else {
        const holder = await storage.holder();
        if (holder) process.stderr.write(`note: ${holder.owner === 'gc' ? 'mirrorgate gc' : 'a mirror'} (pid ${holder.pid} on ${holder.hostname}) is using this directory; the listing may change under it\n`);
      }
      try {
        const access = new AccessTracker(storage.metadata, { clock: systemClock, logger });
        await access.load();
        const collector = new Collector(options, { storage, holder: `gc-${process.pid}`, clock: systemClock, logger, access });
        const result = await collector.run({ dryRun: flags.dryRun ?? false, trigger: 'gc command' });
        if (!flags.dryRun) await access.flush();
        process.stdout.write(flags.json ? `${JSON.stringify(passToJson(result), null, 2)}\n` : formatPass(result, options, storage.description));
      } finally {
        await lock?.release();
        await storage.close?.();
      }
    });
}
