import type { ChildProcess } from 'node:child_process';

/** Children still running, killed synchronously if the test (or bench) process exits without stopping them. */
const live = new Set<ChildProcess>();
let hooked = false;

/** Kills `child` with the process if nobody stopped it by then. */
export function reapOnExit(child: ChildProcess): void {
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  live.add(child);
  const forget = (): void => {
    live.delete(child);
  };
  child.once('exit', forget);
  child.once('error', forget);
}
