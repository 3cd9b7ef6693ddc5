/**
 * Where a review's time goes: runs the webhook (as in bench/webhook.ts, its own process, info logging) under
 * closed-loop load with a V8 CPU profile, then prints the time by stage (HTTP edge and JSON.parse, mutation and
 * patch, admission and encoding, log, metrics, node's HTTP and TLS, GC), the functions with the most self time and
 * those with the most time including their callees. Profile samples are wall-clock: on a busy machine the
 * microseconds per review are inflated, the shares are not.
 *
 *   node --import tsx bench/profile-webhook.ts [--seconds 10] [--log info|silent] [--top 25] [--keep DIR] [--dist DIR]
 *     [--server webhook|floor|constant]    # the same for a peer, to compare what node's HTTP and TLS cost each
 *
 * `--dist DIR` profiles the webhook compiled by tsc into DIR (as deployed); without it, src/ runs under tsx,
 * whose transform adds a `__name` call for every function created.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent } from 'undici';
import { generateBundle, LOCAL_IPS } from '../src/webhook/certs.js';
import { CpuProfile, formatShares } from './lib/cpu-profile.js';
import { saturate, summarise } from './lib/review-load.js';
import { mainThreadProfile, SERVER_KINDS, spawnServer, type ServerKind } from './lib/review-servers.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const seconds = Number(opt('--seconds') ?? 10);
const logLevel = opt('--log') ?? 'info';
const top = Number(opt('--top') ?? 25);
const keep = opt('--keep');
const dist = opt('--dist') ? path.resolve(opt('--dist')!) : undefined;
const kind = (opt('--server') ?? 'webhook') as ServerKind;
if (!SERVER_KINDS.includes(kind)) throw new Error(`--server ${SERVER_KINDS.join('|')}`);
const concurrency = 32;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = path.resolve(repoRoot, '..', 'shared', 'fixtures', 'admission', 'pod-create-kubectl-run.json');
const body = readFileSync(fixture, 'utf8');
const uid = (JSON.parse(body) as { request: { uid: string } }).request.uid;

/** Stages, innermost first: the first rule a frame of the stack matches (walking from the leaf up) names the sample. */
const STAGES: Array<[RegExp, string]> = [
  [/\/node_modules\/fast-json-patch\//, 'diff (fast-json-patch)'],
  [/\/node_modules\/(pino|sonic-boom|fast-redact|@pinojs|quick-format-unescaped|atomic-sleep|on-exit-leak-free|thread-stream|safe-stable-stringify)\//, 'log (pino)'],
  [/\/node_modules\/(prom-client|tdigest|bintrees)\//, 'metrics (prom-client)'],
  [/\/(src|dist)\/(webhook\/pod-mutation|webhook\/pod-edit|reference\/)/, 'mutate (rewrite, patch)'],
  [/\/(src|dist)\/webhook\/(admit|review)/, 'admit (decide, encode)'],
  [/\/(src|dist)\/webhook\/(http|read-body)/, 'http edge (body, JSON.parse, decode)'],
  [/\/bench\/lib\/review-server/, 'peer handler (body, JSON.parse, answer)'],
  [/\/node_modules\/(body-parser|raw-body|iconv-lite|type-is|content-type|bytes|http-errors|unpipe)\//, 'body read (express.raw)'],
  [/\/node_modules\//, 'express (router, response)'],
  [/^node:/, 'HTTP, TLS, sockets, timers (node; TLS encryption is in writev)'],
];
/** Samples with these anywhere on the stack are not reviews. */
const NOT_REVIEWS: Array<[RegExp, string]> = [[/^node:internal\/modules\//, 'start-up (module loading)']];

function stageOf(frame: { functionName: string; url: string }, leaf: { functionName: string; url: string }, stack: ReadonlyArray<{ url: string }>): string | undefined {
  if (frame === leaf) {
    for (const [re, name] of NOT_REVIEWS) if (stack.some((f) => re.test(f.url))) return name;
  }
  if (!frame.url) {
    if (frame === leaf && ['(garbage collector)', '(idle)', '(program)'].includes(frame.functionName)) return frame.functionName;
    return undefined;
  }
  // V8 counts builtins such as JSON.parse in the self time of their caller, so they fall in its stage.
  return STAGES.find(([re]) => re.test(frame.url))?.[1];
}

async function main(): Promise<void> {
  const certs = generateBundle({ now: Date.now(), validityMs: 86_400_000, dnsNames: ['localhost'], ipAddresses: LOCAL_IPS });
  const dir = keep ? path.resolve(keep) : mkdtempSync(path.join(tmpdir(), 'mirrorgate-profile-webhook-'));
  writeFileSync(path.join(dir, 'tls.crt'), certs.cert);
  writeFileSync(path.join(dir, 'tls.key'), certs.key, { mode: 0o600 });
  const agent = new Agent({ connect: { ca: certs.caCert, servername: 'localhost' }, connections: concurrency, keepAliveTimeout: 30_000, pipelining: 1 });
  const server = await spawnServer(kind, dir, { logLevel, uid, cpuProfDir: dir, ...(dist ? { dist } : {}) });
  let reviews = 0;
  let cpuMs = 0;
  try {
    const load = { agent, url: `https://127.0.0.1:${server.port}/mutate`, body, uid };
    reviews += (await saturate(load, concurrency, 1000)).latencies.length;
    const cpu0 = server.cpuMs();
    const r = summarise([await saturate(load, concurrency, seconds * 1000)]);
    cpuMs = server.cpuMs() - cpu0;
    reviews += r.ok;
    console.log(`${r.ok} reviews in ${seconds} s (${r.throughput.toFixed(0)}/s, ${r.errors} errors), ${kind} CPU ${((cpuMs * 1000) / Math.max(1, r.ok)).toFixed(0)} us per review${kind === 'webhook' ? `, log level ${logLevel}, ${dist ? 'compiled' : 'src/ under tsx'}` : ''}`);
  } finally {
    await agent.close();
    await server.stop();
  }
  const file = mainThreadProfile(dir, kind);
  if (!file) throw new Error(`no profile written in ${dir}`);
  const p = CpuProfile.read(file);
  const stages = p.categories(stageOf);
  const aside = new Set(['(idle)', ...NOT_REVIEWS.map(([, name]) => name)]);
  const busyUs = stages.filter(([k]) => !aside.has(k)).reduce((a, [, us]) => a + us, 0);
  const asideText = stages.filter(([k]) => aside.has(k)).map(([k, us]) => `${k} ${(us / 1e6).toFixed(1)} s`).join(', ');
  console.log(`${(p.totalUs / 1e6).toFixed(1)} s sampled (${asideText}); the rest, ${(busyUs / 1e6).toFixed(1)} s, by stage, and per review (${reviews}, warm-up included):`);
  for (const [name, us] of stages.filter(([k]) => !aside.has(k)).slice(0, top)) {
    console.log(`${((us / busyUs) * 100).toFixed(1).padStart(5)}%  ${(us / Math.max(1, reviews)).toFixed(1).padStart(6)} us  ${name}`);
  }
  console.log('\nself time (share of all samples):');
  for (const line of formatShares(p.self(), p.totalUs, top)) console.log(line);
  console.log('\nincluding callees:');
  for (const line of formatShares(p.inclusive(), p.totalUs, top)) console.log(line);
  if (!keep) rmSync(dir, { recursive: true, force: true });
  else console.log(`\nprofile kept in ${file}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`profile-webhook: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
