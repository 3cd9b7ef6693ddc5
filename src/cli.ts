import { Command } from 'commander';
import { registerGcCommand } from './mirror/cache/gc-command.js';
import { registerMirrorCommand } from './mirror/command.js';
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
  registerWebhookCommands(program);
  return program;
}

