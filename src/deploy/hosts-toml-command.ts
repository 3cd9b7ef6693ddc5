import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { CONTAINERD_CERTS_DIR, hostsTomlFiles, mirrorHostOf, printHostsToml } from './hosts-toml.js';
import { writeFileAtomically } from './write-atomic.js';

/** `mirrorgate hosts-toml`: containerd's hosts.toml for every upstream, printed or written under a certs.d tree. */

export interface HostsTomlFlags {
  mirror?: string;
  ca?: string;
  config?: string;
  out?: string;
  installCa?: string;
  certsDir?: string;
}

export async function runHostsToml(flags: HostsTomlFlags, out: { stdout: (t: string) => void; stderr: (t: string) => void }, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config = loadConfig({ file: flags.config ?? env.MIRRORGATE_CONFIG, env });
  const mirror = flags.mirror ?? config.webhook.mirrorHost;
  const certsDir = flags.certsDir ?? CONTAINERD_CERTS_DIR;
  if (flags.installCa !== undefined && (flags.out === undefined || flags.ca !== undefined)) throw new Error('--install-ca needs --out and replaces --ca');
  // containerd also trusts <certs.d>/<host>/ca.crt for pulls straight from the mirror (images the webhook rewrote).
  const caNodePath = flags.installCa !== undefined ? `${certsDir}/${mirrorHostOf(mirror)}/ca.crt` : flags.ca;
  const files = hostsTomlFiles(config, { mirror, ca: caNodePath });
  if (flags.out === undefined) {
    out.stdout(printHostsToml(files, certsDir));
    return;
  }
  if (flags.installCa !== undefined) {
    const ca = await readFile(flags.installCa, 'utf8');
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`${flags.installCa}: not a PEM certificate`);
    const target = path.join(flags.out, mirrorHostOf(mirror), 'ca.crt');
    await writeFileAtomically(target, ca, 0o644);
    out.stderr(`wrote ${target}\n`);
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
    .option('--install-ca <file>', "with --out: copy this CA certificate to <dir>/<mirror-host>/ca.crt and point every hosts.toml at it")
    .option('--certs-dir <dir>', 'where the files live on the node, for the ca path and the printed headers', CONTAINERD_CERTS_DIR)
    .action(async (flags: HostsTomlFlags) => {
      await runHostsToml(flags, { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) });
    });
}
