import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { find, render, ROOT } from '../../helpers/deploy/kustomize.js';
import { makeTempDir, useCleanup } from '../../helpers/tmp.js';

/**
 * The Dockerfile cannot be built here (no Docker engine): check what it relies on instead, and run the
 * entrypoint from a clean production-only install of the compiled package, as the runtime stage does.
 */
const run = promisify(execFile);
const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string>; scripts: Record<string, string> };

interface Instruction {
  op: string;
  args: string;
}

/** Instructions with continuation lines joined, comments dropped. */
function instructions(): Instruction[] {
  return dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
}

function stages(): Instruction[][] {
  const out: Instruction[][] = [];
  for (const i of instructions()) {
    if (i.op === 'FROM') out.push([]);
    out[out.length - 1]?.push(i);
  }
  return out;
}

/** What .dockerignore lets into the build context: `*` then `!path` exceptions (the form this repository uses). */
function inContext(file: string): boolean {
  const lines = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  expect(lines[0]).toBe('*');
  return lines.slice(1).some((l) => l.startsWith('!') && (file === l.slice(1).replace(/\/$/, '') || file.startsWith(l.slice(1))));
}

describe('Dockerfile', () => {
  const cleanup = useCleanup();

  it('builds on Node 24 and runs on Node 24 LTS as the manifests’ non-root user', () => {
    const s = stages();
    expect(s.length).toBe(2);
    for (const stage of s) expect(stage[0]!.args).toMatch(/^node:24-bookworm-slim\b/);
    const runtime = s[1]!;
    const user = runtime.filter((i) => i.op === 'USER').pop()!.args;
    const uid = Number(user.split(':')[0]);
    const mirror = find(render('base'), 'Deployment', 'mirrorgate-mirror');
    const podSecurity = (mirror.spec as { template: { spec: { securityContext: { runAsUser: number; runAsGroup: number } } } }).template.spec.securityContext;
    expect(user).toBe(`${podSecurity.runAsUser}:${podSecurity.runAsGroup}`);
    expect(uid).not.toBe(0);
    expect(runtime.some((i) => i.op === 'RUN' && /npm ci --omit=dev\b/.test(i.args))).toBe(true);
    expect(runtime.some((i) => i.op === 'COPY' && /^--from=build \S*dist \.\/dist$/.test(i.args))).toBe(true);
  });

  it('copies only files that exist and that .dockerignore lets in', () => {
    const copies = instructions().filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'));
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) {
      const parts = c.args.split(/\s+/);
      for (const src of parts.slice(0, -1)) {
        expect(existsSync(path.join(ROOT, src)), src).toBe(true);
        expect(inContext(src), `${src} excluded by .dockerignore`).toBe(true);
      }
    }
  });

  it('runs npm scripts that exist, and an entrypoint that is the package bin', () => {
    for (const i of instructions().filter((x) => x.op === 'RUN'))
      for (const m of i.args.matchAll(/npm run (\S+)/g)) expect(pkg.scripts[m[1]!], `npm run ${m[1]}`).toBeDefined();
    const entry = JSON.parse(instructions().find((i) => i.op === 'ENTRYPOINT')!.args) as string[];
    expect(entry).toEqual(['node', pkg.bin.mirrorgate]);
    const cmd = JSON.parse(instructions().find((i) => i.op === 'CMD')!.args) as string[];
    expect(cmd[0]).toBe('mirror');
  });

  it('runs the entrypoint from a clean production-only install of the compiled package', async () => {
    const dir = cleanup.add(await makeTempDir('mirrorgate-image-'));
    const app = dir.path;
    // As the build stage: compile. As the runtime stage: package files, `npm ci --omit=dev`, dist.
    await run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', path.join(app, 'dist')], { cwd: ROOT });
    for (const f of ['package.json', 'package-lock.json']) copyFileSync(path.join(ROOT, f), path.join(app, f));
    await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app, env: { ...process.env, NODE_ENV: 'production' } });
    expect(existsSync(path.join(app, 'node_modules/vitest')), 'no dev dependencies').toBe(false);
    expect(existsSync(path.join(app, 'node_modules/typescript'))).toBe(false);

    const entry = [path.join(app, pkg.bin.mirrorgate!)];
    const cli = async (...args: string[]): Promise<string> => (await run(process.execPath, [...entry, ...args], { cwd: app, env: { ...process.env, MIRRORGATE_CONFIG: '' } })).stdout;
    const help = await cli('--help');
    for (const command of ['mirror', 'webhook', 'rewrite', 'htpasswd', 'pull-secret', 'hosts-toml']) expect(help).toContain(command);
    expect(await cli('rewrite', '--mirror', 'mirror.example.com', 'nginx')).toBe('mirror.example.com/library/nginx:latest\n');
    expect(await cli('hosts-toml', '--mirror', 'mirror.example.com')).toContain('[host."https://mirror.example.com"]');
    expect(await cli('mirror', '--help')).toContain('--storage');

    // Every compiled module loads with production dependencies only (the lazily imported Kubernetes client too).
    const modules = readdirSync(path.join(app, 'dist'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js') && f !== 'main.js');
    const script = `for (const m of ${JSON.stringify(modules)}) await import('./dist/' + m);`;
    await run(process.execPath, ['--input-type=module', '-e', script], { cwd: app });
  }, 120_000);
});
