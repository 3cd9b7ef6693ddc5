import { readFileSync } from 'node:fs';

/** Reading V8 CPU profiles (`node --cpu-prof`): self time, inclusive time and time by category. */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface RawProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** A frame's short name: function and file:line, with the path cut at node_modules/, dist/ or src/. */
export function frameKey(f: CallFrame): string {
  const where = f.url ? `${f.url.replace(/^.*\/(node_modules|dist|src)\//, '$1/')}:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'} ${where}`.trim();
}

export class CpuProfile {
  /** Sampled time in microseconds. */
  readonly totalUs: number;
  private readonly byId: Map<number, ProfileNode>;
  private readonly parent = new Map<number, number>();

  constructor(private readonly raw: RawProfile) {
    this.byId = new Map(raw.nodes.map((n) => [n.id, n]));
    for (const n of raw.nodes) for (const c of n.children ?? []) this.parent.set(c, n.id);
    this.totalUs = raw.timeDeltas.reduce((a, b) => a + b, 0);
  }

  static read(file: string): CpuProfile {
    return new CpuProfile(JSON.parse(readFileSync(file, 'utf8')) as RawProfile);
  }

  /** Each sample's leaf-to-root stack of frames, with its duration. */
  private *stacks(): Generator<{ frames: CallFrame[]; us: number }> {
    for (let i = 0; i < this.raw.samples.length; i++) {
      const frames: CallFrame[] = [];
      for (let id: number | undefined = this.raw.samples[i]; id !== undefined; id = this.parent.get(id)) frames.push(this.byId.get(id)!.callFrame);
      yield { frames, us: this.raw.timeDeltas[i] ?? 0 };
    }
  }

  /** Time spent in each function itself, most first. */
  self(): Array<[string, number]> {
    const self = new Map<string, number>();
    for (const { frames, us } of this.stacks()) {
      const key = frameKey(frames[0]!);
      self.set(key, (self.get(key) ?? 0) + us);
    }
    return [...self].sort((a, b) => b[1] - a[1]);
  }

  /** Time spent in each function and everything it called (a recursive function counted once per sample). */
  inclusive(): Array<[string, number]> {
    const total = new Map<string, number>();
    for (const { frames, us } of this.stacks()) {
      for (const key of new Set(frames.map(frameKey))) total.set(key, (total.get(key) ?? 0) + us);
    }
    return [...total].sort((a, b) => b[1] - a[1]);
  }

  /**
   * Time by category: each sample goes to the innermost frame that `classify` names (walking from the leaf to
   * the root), or to `other: <leaf>` when none does.
   */
  categories(classify: (frame: CallFrame, leaf: CallFrame, stack: readonly CallFrame[]) => string | undefined): Array<[string, number]> {
    const total = new Map<string, number>();
    for (const { frames, us } of this.stacks()) {
      const leaf = frames[0]!;
      let name: string | undefined;
      for (const f of frames) if ((name = classify(f, leaf, frames)) !== undefined) break;
      const key = name ?? `other: ${frameKey(leaf)}`;
      total.set(key, (total.get(key) ?? 0) + us);
    }
    return [...total].sort((a, b) => b[1] - a[1]);
  }
}

/** Lines of `share%  name` for the first `top` entries. */
export function formatShares(entries: Array<[string, number]>, totalUs: number, top: number): string[] {
  return entries.slice(0, top).map(([key, us]) => `${((us / totalUs) * 100).toFixed(1).padStart(5)}%  ${key}`);
}
