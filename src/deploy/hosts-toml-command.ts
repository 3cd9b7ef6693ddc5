import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { hostsTomlFiles, printHostsToml } from './hosts-toml.js';
import { writeFileAtomically } from './write-atomic.js';

/** `mirrorgate hosts-toml`: containerd's hosts.toml for every upstream, printed or written under a certs.d tree. */

export interface HostsTomlFlags {
  mirror?: string;
  ca?: string;
  config?: string;
  out?: string;
}

export async function runHostsToml(flags: HostsTomlFlags, out: { stdout: (t: string) => void; stderr: (t: string) => void }, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config = loadConfig({ file: flags.config ?? env.MIRRORGATE_CONFIG, env });
  const files = hostsTomlFiles(config, { mirror: flags.mirror ?? config.webhook.mirrorHost, ca: flags.ca });
  if (flags.out === undefined) {
    out.stdout(printHostsToml(files));
    return;
  }
  for (const f of files) {
    const target = path.join(flags.out, f.relativePath);
    await writeFileAtomically(target, f.text, 0o644);
    out.stderr(`wrote ${target}\n`);
  }
}

export function registerHostsTomlCommand(program: Command): void {
  program
    .command('hosts-toml')
    .description("print containerd's hosts.toml for each upstream, sending node pulls to the mirror (with the upstream as fallback)")
    .option('--mirror <host>', 'mirror host or https:// URL (default: webhook.mirrorHost)')
    .option('--ca <file>', "path of the mirror's CA certificate on the node (written as ca = ...)")
    .option('--config <file>', 'configuration file (YAML): its upstreams are the registries mirrored')
    .option('--out <dir>', 'write <dir>/<registry>/hosts.toml (e.g. /etc/containerd/certs.d) instead of printing')
    .action(async (flags: HostsTomlFlags) => {
      await runHostsToml(flags, { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) });
    });
}
