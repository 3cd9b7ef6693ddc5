import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { parseListen } from '../../config/listen.js';
import { PLATFORM_RE, type Config } from '../../config/schema.js';
import { readPasswordFromStream } from '../../deploy/read-password.js';
import { parseReference } from '../../reference/parse.js';
import { formatBytes } from '../cache/report.js';
import { fetchImage } from './fetch-image.js';
import { warmTargets } from './targets.js';

export interface WarmFlags {
  config?: string;
  mirror?: string;
  user?: string;
  passwordStdin?: boolean;
  ca?: string;
  platform?: string[];
}

export interface WarmIo {
  stdin: Readable;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** The mirror a local `mirrorgate mirror` listens on, by its configuration. */
function defaultMirrorUrl(config: Config): string {
  const listen = parseListen(config.mirror.listen)!;
  const host = !listen.host || listen.host === '0.0.0.0' || listen.host === '::' ? '127.0.0.1' : listen.host;
  return `${config.mirror.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${listen.port}`;
}

/**
 * `mirrorgate warm`: pulls images through a running mirror so they are cached before the first node asks:
 * each image's manifest, the manifests of the wanted platforms of an index, and every blob. Returns the
 * exit code: 0 when every image was fetched, 1 when one failed, 2 for bad arguments.
 */
export async function runWarm(images: string[], flags: WarmFlags, io: WarmIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let config: Config;
  try {
    config = loadConfig({ file: flags.config ?? env.MIRRORGATE_CONFIG, env });
  } catch (err) {
    io.stderr(`${(err as Error).message}\n`);
    return 2;
  }
  const wanted = images.length > 0 ? images : [...config.mirror.warm.images];
  const problems: string[] = [];
  if (wanted.length === 0) problems.push('name the images to warm (or configure mirror.warm.images)');
  for (const image of wanted) {
    const parsed = parseReference(image);
    if (!parsed.ok) problems.push(`${image}: ${parsed.error}`);
  }
  const platforms = flags.platform && flags.platform.length > 0 ? flags.platform : [...config.mirror.warm.platforms];
  for (const p of platforms) if (!PLATFORM_RE.test(p)) problems.push(`--platform ${p}: use os/architecture[/variant], e.g. linux/amd64`);
  if (flags.user !== undefined && !flags.passwordStdin) problems.push('--user needs --password-stdin (the password on stdin)');
  let mirror: URL | undefined;
  try {
    mirror = new URL(flags.mirror ?? defaultMirrorUrl(config));
    if (mirror.protocol !== 'http:' && mirror.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    problems.push(`--mirror ${flags.mirror}: not an http(s) URL`);
  }
  if (problems.length > 0 || !mirror) {
    for (const p of problems) io.stderr(`mirrorgate warm: ${p}\n`);
    return 2;
  }
  const password = flags.passwordStdin ? await readPasswordFromStream(io.stdin) : undefined;
  const authorization = flags.user !== undefined ? `Basic ${Buffer.from(`${flags.user}:${password ?? ''}`).toString('base64')}` : undefined;
  // undici is loaded here, not at the top: every process that builds the command tree imports this file.
  const { Agent } = await import('undici');
  const { MirrorHttpSource } = await import('./http-source.js');
  const dispatcher = new Agent(flags.ca ? { connect: { ca: readFileSync(flags.ca) } } : {});
  let failed = 0;
  try {
    for (const target of warmTargets(wanted)) {
      try {
        const source = new MirrorHttpSource({ mirror, repo: target.repo, authorization, dispatcher });
        const image = await fetchImage(source, target.reference, platforms);
        const what = image.platforms.length > 0 ? ` (${image.platforms.join(', ')})` : '';
        const name = `${target.repo.upstream}/${target.repo.path}${target.digest === undefined ? `:${target.reference}` : ''}`;
        io.stdout(`warmed ${name} ${image.digest}${what}: ${plural(image.manifests, 'manifest')}, ${plural(image.blobs, 'blob')}, ${formatBytes(image.size)}\n`);
      } catch (err) {
        failed++;
        io.stderr(`mirrorgate warm: ${target.image}: ${(err as Error).message}\n`);
      }
    }
  } finally {
    await dispatcher.close();
  }
  return failed > 0 ? 1 : 0;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function registerWarmCommand(program: Command): void {
  program
    .command('warm')
    .description('pull images through a running mirror so they are cached before any node pulls them (default: mirror.warm.images)')
    .argument('[image...]', 'image references, as in a Pod spec')
    .option('-c, --config <file>', 'YAML configuration file, for the defaults (env MIRRORGATE_CONFIG)')
    .option('--mirror <url>', 'the mirror (default: http(s)://127.0.0.1:<port of mirror.listen>)')
    .option('--user <name>', 'mirror user, when the mirror has authentication on')
    .option('--password-stdin', "read the user's password from stdin")
    .option('--ca <file>', "CA certificate (PEM) to trust for the mirror's TLS")
    .option('--platform <os/arch>', 'a platform to fetch from multi-platform images, repeatable (default: mirror.warm.platforms)', (v: string, acc: string[] = []) => [...acc, v])
    .action(async (images: string[], flags: WarmFlags) => {
      process.exitCode = await runWarm(images, flags, { stdin: process.stdin, stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) });
    });
}
