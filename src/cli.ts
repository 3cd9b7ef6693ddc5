import { Command } from 'commander';
import { registerHostsTomlCommand } from './deploy/hosts-toml-command.js';
import { registerHtpasswdCommand } from './deploy/htpasswd-command.js';
import { registerPullSecretCommand } from './deploy/pull-secret-command.js';
import { registerGcCommand } from './mirror/cache/gc-command.js';
import { registerMirrorCommand } from './mirror/command.js';
import { registerWarmCommand } from './mirror/warm/warm-command.js';
import { registerServeCommand } from './serve-command.js';
import { registerWebhookCommands } from './webhook/command.js';

/** Builds the `mirrorgate` command tree; each area registers its own subcommands. */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('mirrorgate')
    .description('Pull-through image mirror and admission webhook that keeps Kubernetes image pulls off Docker Hub')
    .showHelpAfterError();
  registerServeCommand(program);
  registerMirrorCommand(program);
  registerGcCommand(program);
  registerWarmCommand(program);
  registerWebhookCommands(program);
  registerHtpasswdCommand(program);
  registerPullSecretCommand(program);
  registerHostsTomlCommand(program);
  return program;
}

