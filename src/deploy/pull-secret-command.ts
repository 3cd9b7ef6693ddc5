import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { pullSecretYaml } from './pull-secret.js';
import { readPassword, readPasswordFromStream, type PasswordInput } from './read-password.js';

/** `mirrorgate pull-secret`: prints the pull secret source manifest for `kubectl apply -f -`. */

export interface PullSecretFlags {
  server?: string;
  user: string;
  passwordStdin?: boolean;
  name?: string;
  namespace?: string;
  config?: string;
}

export async function runPullSecret(flags: PullSecretFlags, io: PasswordInput & { stdout: (text: string) => void }, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config = loadConfig({ file: flags.config ?? env.MIRRORGATE_CONFIG, env });
  const wh = config.webhook;
  const password = flags.passwordStdin ? await readPasswordFromStream(io.stdin) : await readPassword(io);
  if (password === '') throw new Error('empty password');
  io.stdout(
    pullSecretYaml({
      server: flags.server ?? wh.mirrorHost,
      username: flags.user,
      password,
      name: flags.name ?? wh.pullSecretSourceName,
      namespace: flags.namespace ?? wh.namespace ?? 'mirrorgate',
    }),
  );
}

export function registerPullSecretCommand(program: Command): void {
  program
    .command('pull-secret')
    .description("print the webhook's pull secret source (a kubernetes.io/dockerconfigjson Secret for the mirror host) as YAML")
    .requiredOption('--user <name>', 'mirror user (see `mirrorgate htpasswd add`)')
    .option('--server <host>', 'mirror host as it appears in image references (default: webhook.mirrorHost)')
    .option('--password-stdin', 'read the password from stdin (default: stdin when it is not a terminal, else a prompt)')
    .option('--name <name>', 'Secret name (default: webhook.pullSecretSourceName)')
    .option('--namespace <ns>', 'namespace (default: webhook.namespace, else mirrorgate)')
    .option('--config <file>', 'configuration file (YAML) for the defaults')
    .action(async (flags: PullSecretFlags) => {
      await runPullSecret(flags, { stdin: process.stdin, prompt: process.stderr, stdout: (t) => process.stdout.write(t) });
    });
}
