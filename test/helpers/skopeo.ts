import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

/**
 * The real `skopeo` (Debian's package, 1.9.x at the time of writing): a client that does the token flow and
 * verifies every digest it pulls. Without `creds` options it runs with `--src-no-creds` / `--no-creds` /
 * `--dest-no-creds`, so credentials stored on the machine never reach a test registry.
 */

export interface SkopeoResult {
  /** Exit code; null when killed (timeout). */
  code: number | null;
  stdout: string;
  /** stdout as bytes (for `inspect --raw`). */
  stdoutBytes: Buffer;
  stderr: string;
  /** The arguments it ran with (credentials masked), for error messages. */
  args: string[];
}

export interface SkopeoCopyOptions {
  /** Verify TLS and require https for a `docker://` source (default false: test registries are plain http). */
  srcTlsVerify?: boolean;
  /** `user:password` for the source. */
  srcCreds?: string;
  srcCertDir?: string;
  /** Same for a `docker://` destination (default false). */
  destTlsVerify?: boolean;
  destCreds?: string;
  /** `--multi-arch`: `system` (skopeo's default: the host's platform only), `all`, `index-only`. */
  multiArch?: 'system' | 'all' | 'index-only';
  extraArgs?: string[];
  /** Kill it after this long (default 60 s). */
  timeoutMs?: number;
  /** Throw a readable error on a non-zero exit (default false). */
  throwOnError?: boolean;
}

export interface SkopeoInspectOptions {
  tlsVerify?: boolean;
  creds?: string;
  certDir?: string;
  /** `--raw`: the manifest exactly as served (parsed here), instead of skopeo's summary. */
  raw?: boolean;
  /** `--config`: the image config (with `raw`, the raw config blob). */
  config?: boolean;
  extraArgs?: string[];
  timeoutMs?: number;
}

const SKOPEO = process.env.SKOPEO_BIN ?? 'skopeo';

/** Runs `skopeo --insecure-policy ARGS`. */
export async function runSkopeo(args: string[], opts: { timeoutMs?: number; throwOnError?: boolean } = {}): Promise<SkopeoResult> {
  const full = ['--insecure-policy', ...args];
  const masked = full.map((a, i) => (/-creds$/.test(full[i - 1] ?? '') ? a.replace(/:.*/, ':***') : a));
  const result = await new Promise<SkopeoResult>((resolve, reject) => {
    const child = spawn(SKOPEO, full, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${opts.timeoutMs ?? 60_000} ms]`;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${SKOPEO}: ${err.message}`));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      resolve({ code, stdout: stdoutBytes.toString('utf8'), stdoutBytes, stderr, args: masked });
    });
  });
  if (opts.throwOnError && result.code !== 0) {
    throw new Error(`skopeo ${masked.join(' ')} failed (exit ${result.code}):\n${result.stderr.trim()}`);
  }
  return result;
}

/**
 * `skopeo copy SRC DEST`, e.g. `skopeoCopy('docker://127.0.0.1:5000/library/x:1', 'dir:/tmp/out')`. Plain http
 * for docker:// (TLS verification off) unless asked otherwise.
 */
export async function skopeoCopy(src: string, dest: string, opts: SkopeoCopyOptions = {}): Promise<SkopeoResult> {
  const args = ['copy'];
  if (src.startsWith('docker://')) {
    args.push(`--src-tls-verify=${opts.srcTlsVerify ?? false}`);
    if (opts.srcCreds !== undefined) args.push('--src-creds', opts.srcCreds);
    else args.push('--src-no-creds');
    if (opts.srcCertDir !== undefined) args.push('--src-cert-dir', opts.srcCertDir);
  }
  if (dest.startsWith('docker://')) {
    args.push(`--dest-tls-verify=${opts.destTlsVerify ?? false}`);
    if (opts.destCreds !== undefined) args.push('--dest-creds', opts.destCreds);
    else args.push('--dest-no-creds');
  }
  if (opts.multiArch !== undefined) args.push('--multi-arch', opts.multiArch);
  args.push(...(opts.extraArgs ?? []), src, dest);
  const run: { timeoutMs?: number; throwOnError?: boolean } = {};
  if (opts.timeoutMs !== undefined) run.timeoutMs = opts.timeoutMs;
  if (opts.throwOnError !== undefined) run.throwOnError = opts.throwOnError;
  return runSkopeo(args, run);
}

function inspectArgs(ref: string, opts: SkopeoInspectOptions): string[] {
  const args = ['inspect'];
  if (ref.startsWith('docker://')) {
    args.push(`--tls-verify=${opts.tlsVerify ?? false}`);
    if (opts.creds !== undefined) args.push('--creds', opts.creds);
    else args.push('--no-creds');
    if (opts.certDir !== undefined) args.push('--cert-dir', opts.certDir);
  }
  if (opts.raw) args.push('--raw');
  if (opts.config) args.push('--config');
  args.push(...(opts.extraArgs ?? []), ref);
  return args;
}

/** `skopeo inspect REF`, parsed. Throws on failure. */
export async function skopeoInspect(ref: string, opts: SkopeoInspectOptions = {}): Promise<unknown> {
  const r = await runSkopeo(inspectArgs(ref, opts), { timeoutMs: opts.timeoutMs ?? 30_000, throwOnError: true });
  return JSON.parse(r.stdout) as unknown;
}

/** `skopeo inspect --raw REF`: the manifest's exact bytes (stdout, not re-encoded) and their digest. */
export async function skopeoInspectRaw(
  ref: string,
  opts: Omit<SkopeoInspectOptions, 'raw'> = {},
): Promise<{ bytes: Buffer; digest: string; json: unknown }> {
  const r = await runSkopeo(inspectArgs(ref, { ...opts, raw: true }), {
    timeoutMs: opts.timeoutMs ?? 30_000,
    throwOnError: true,
  });
  const bytes = r.stdoutBytes;
  return { bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, json: JSON.parse(r.stdout) as unknown };
}

export interface DirImage {
  /** sha256 of manifest.json (the top-level manifest: an index when copied with `--multi-arch all`). */
  manifestDigest: string;
  manifestBytes: Buffer;
  manifest: unknown;
  /** Digests of the blob files present (layers and configs), each verified against its content. */
  blobs: string[];
  /** Per-platform manifests (`<hex>.manifest.json`, written by `--multi-arch all`), by digest, verified. */
  instances: Map<string, Buffer>;
}

async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/**
 * Reads what `skopeo copy ... dir:DIR` wrote and verifies it: every blob file's sha256 must equal its name,
 * every instance manifest's sha256 its name. Throws on a mismatch.
 */
export async function readDirImage(dir: string): Promise<DirImage> {
  const manifestBytes = await readFile(join(dir, 'manifest.json'));
  const manifestDigest = `sha256:${createHash('sha256').update(manifestBytes).digest('hex')}`;
  const blobs: string[] = [];
  const instances = new Map<string, Buffer>();
  for (const name of (await readdir(dir)).sort()) {
    const instance = /^([a-f0-9]{64})\.manifest\.json$/.exec(name);
    if (instance) {
      const bytes = await readFile(join(dir, name));
      const digest = createHash('sha256').update(bytes).digest('hex');
      if (digest !== instance[1]) throw new Error(`${name}: content has sha256 ${digest}`);
      instances.set(`sha256:${digest}`, bytes);
      continue;
    }
    if (!/^[a-f0-9]{64}$/.test(name)) continue; // manifest.json, version, signatures
    const digest = await fileDigest(join(dir, name));
    if (digest !== name) throw new Error(`blob ${name}: content has sha256 ${digest}`);
    blobs.push(`sha256:${name}`);
  }
  return { manifestDigest, manifestBytes, manifest: JSON.parse(manifestBytes.toString('utf8')) as unknown, blobs, instances };
}
