import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import type { Scenario } from '../lib/context.js';
import { emptyResult } from '../lib/report.js';

const WEBHOOK_BENCH = join(resolve(import.meta.dirname, '..'), 'webhook.ts');

/**
 * 7. The webhook: AdmissionReviews over TLS keep-alive at rising rates, beside a floor server (reads and parses the
 * review) and a constant-answer server. Measured by bench/webhook.ts (its own script, kept separately); this
 * scenario runs it as a child process, with the webhook compiled like the mirror (unless `--tsx`), and includes
 * what it prints. With 2 CPUs or more, at the fixed rates, the servers and the load generator are pinned to different ones (`--pin`),
 * so the generator's TLS work does not take the server's core (the output says which way it ran).
 */
export const webhook: Scenario = {
  id: '7',
  title: 'Webhook: AdmissionReviews over TLS at rising rates',
  async run(ctx) {
    const result = emptyResult(this.id, this.title);
    if (!existsSync(WEBHOOK_BENCH)) {
      result.skipped = 'bench/webhook.ts is not there yet';
      return result;
    }
    const compiled = ctx.mirrorMain.endsWith('.js') ? ['--dist', dirname(ctx.mirrorMain)] : [];
    const profile = ctx.cpuProfDir ? ['--cpu-prof', ctx.cpuProfDir] : [];
    const pin = availableParallelism() >= 2 ? ['--pin'] : [];
    const args = ['--import', 'tsx', WEBHOOK_BENCH, ...(ctx.quick ? ['--quick'] : []), ...compiled, ...profile, ...pin];
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
      const child = spawn(process.execPath, args, { cwd: resolve(import.meta.dirname, '..', '..'), stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => {
        err += c.toString('utf8');
        process.stderr.write(c);
      });
      child.once('close', (c) => done({ code: c, stdout: out, stderr: err }));
    });
    if (code !== 0) throw new Error(`bench/webhook.ts exited ${code}:\n${stderr.slice(-2000)}`);
    // Its output is a plain-text table: pass it through verbatim.
    result.tables.push({ columns: [], rows: [], title: `\`\`\`\n${stdout.trim()}\n\`\`\`` });
    const root = resolve(import.meta.dirname, '..', '..');
    const shown = args.slice(3).map((a) => (a.startsWith(root) ? relative(root, a) : a));
    result.notes.push(`Output of \`node --import tsx bench/webhook.ts ${shown.join(' ')}\`.`);
    result.metrics.exitCode = 0;
    return result;
  },
};
