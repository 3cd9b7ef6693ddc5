import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Cleanup } from './tmp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface CliProcess {
  child: ChildProcess;
  /** Everything it printed so far (stdout and stderr, the last 64 KiB). */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Resolves once the output matches; fails on timeout or exit, with the output. */
  waitForOutput(pattern: RegExp, ms?: number): Promise<void>;
}

/** Runs `mirrorgate ARGS` from source, as the bin does, killed by `cleanup` if still running. */
export function runCli(args: string[], cleanup: Cleanup, env: NodeJS.ProcessEnv = {}): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/main.ts'), ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const append = (d: Buffer): void => {
    out = (out + d.toString()).slice(-64 * 1024);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  cleanup.add(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return {
    child,
    output: () => out,
    exited,
    async waitForOutput(pattern, ms = 30_000) {
      const until = Date.now() + ms;
      while (!pattern.test(out)) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`mirrorgate ${args[0]} exited before printing ${pattern}:\n${out}`);
        if (Date.now() > until) throw new Error(`timed out waiting for ${pattern}; output:\n${out}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
  };
}

/** `mirrorgate mirror` on 127.0.0.1:port with one Docker Hub upstream; resolves once it listens. */
export async function startMirrorCli(opts: { upstream: string; storage: string; port: number; cleanup: Cleanup; env?: NodeJS.ProcessEnv }): Promise<CliProcess> {
  const cli = runCli(['mirror', '--upstream', `docker.io=${opts.upstream}`, '--storage', opts.storage, '--listen', `127.0.0.1:${opts.port}`], opts.cleanup, opts.env);
  await cli.waitForOutput(/listening on/);
  return cli;
}

/**
 * Runs `mirrorgate ARGS` to completion with `input` on stdin (a pipe, so never a terminal) and no config file
 * from the environment; resolves with its exit code and what it printed.
 */
export function runCliToEnd(args: string[], input = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/main.ts'), ...args], {
      cwd: root,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, MIRRORGATE_CONFIG: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin!.end(input);
  });
}
