import { CpuProfile, formatShares } from './lib/cpu-profile.js';

/**
 * Summarises a V8 CPU profile (from `npm run bench -- N --cpu-prof DIR`): the functions with the most self
 * time, and the share of idle, GC and program time; with `--inclusive`, also the functions with the most time
 * including what they called.
 *
 *   node --import tsx bench/profile.ts DIR/CPU.*.cpuprofile [--top 25] [--inclusive]
 */

const args = process.argv.slice(2);
const topAt = args.indexOf('--top');
const top = topAt >= 0 ? Number(args[topAt + 1]) : 25;
const inclusive = args.includes('--inclusive');
const files = args.filter((a, i) => !a.startsWith('--') && (topAt < 0 || i !== topAt + 1));
for (const file of files) {
  const p = CpuProfile.read(file);
  console.log(`${file}: ${(p.totalUs / 1e6).toFixed(1)} s sampled`);
  for (const line of formatShares(p.self(), p.totalUs, top)) console.log(line);
  if (inclusive) {
    console.log('including callees:');
    for (const line of formatShares(p.inclusive(), p.totalUs, top)) console.log(line);
  }
}
