import type { Cleanup } from '../../test/helpers/tmp.js';
import type { ScenarioResult } from './report.js';

/** What the runner hands every scenario. */
export interface BenchContext {
  /** Smoke mode: one run, tiny sizes, short durations. */
  quick: boolean;
  /** Repetitions to take the median of (1 in quick mode). */
  runs: number;
  /** The mirror's entry point (built main.js, or src/main.ts under tsx). */
  mirrorMain: string;
  /** Directory for V8 CPU profiles of the mirror, when `--cpu-prof` was given. */
  cpuProfDir: string | undefined;
  /** `--workers N`: scenarios 1 and 2 also measure a mirror with `mirror.workers: N` in the same run. */
  workers?: number | undefined;
  /** Everything started here is stopped when the scenario ends, even on failure. */
  cleanup: Cleanup;
  log(message: string): void;
}

export interface Scenario {
  id: string;
  title: string;
  run(ctx: BenchContext): Promise<ScenarioResult>;
}
