import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Debian's `podman` as the seeds' guides run it on a build machine, confined to one directory: its image
 * store (`--root`, vfs: no overlay mounts needed), its run state (`--runroot`, `--tmpdir`), its temp files and
 * its credentials (`--authfile`) all live under `dir`, so nothing on the machine is read or changed. No
 * container is ever run: only login, pull, tag and push, which need neither user namespaces nor cgroups.
 */
export interface Podman {
  /** Runs `podman GLOBAL-FLAGS ARGS` (stdin `input`); throws with its output on a non-zero exit. */
  run(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<{ stdout: string; stderr: string }>;
  /** The registry flags for `login`, `pull` and `push`: verified TLS with the CA in `certDir`, the private authfile. */
  registryFlags: string[];
}

export async function podmanIn(dir: string, certDir: string): Promise<Podman> {
  for (const d of ['root', 'run', 'tmp', 'libpod']) await mkdir(join(dir, d), { recursive: true });
  const global = [
    '--root', join(dir, 'root'),
    '--runroot', join(dir, 'run'),
    '--tmpdir', join(dir, 'libpod'),
    '--storage-driver', 'vfs',
    '--cgroup-manager', 'cgroupfs',
    '--events-backend', 'file',
  ];
  const registryFlags = ['--tls-verify=true', '--cert-dir', certDir, '--authfile', join(dir, 'auth.json')];
  const env = { ...process.env, TMPDIR: join(dir, 'tmp'), REGISTRY_AUTH_FILE: join(dir, 'auth.json') };
  return {
    registryFlags,
    run(args, opts = {}) {
      return new Promise((resolve, reject) => {
        const child = spawn('podman', [...global, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
        child.once('error', (err) => {
          clearTimeout(timer);
          reject(new Error(`cannot run podman: ${err.message}`));
        });
        child.once('close', (code, signal) => {
          clearTimeout(timer);
          if (code === 0) resolve({ stdout, stderr });
          else reject(new Error(`podman ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${stderr.trim()}\n${stdout.trim()}`));
        });
        child.stdin.end(opts.input ?? '');
      });
    },
  };
}
