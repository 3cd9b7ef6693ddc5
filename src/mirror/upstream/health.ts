import type { Clock } from '../../common/clock.js';

/** The last answers of an upstream, as the status page shows them. */
export interface UpstreamHealthSnapshot {
  /** Epoch ms of the last request the upstream answered (any status but 429 and 5xx). */
  lastSuccess?: number;
  /** The last request it failed: epoch ms and the outcome (a status code, or `error` for no answer). */
  lastFailure?: { at: number; outcome: string };
}

/** What counts as the upstream failing: no answer, rate limiting, server errors. A 404 is a healthy answer. */
export function isFailure(outcome: string): boolean {
  return outcome === 'error' || outcome === '429' || outcome.startsWith('5');
}

/** Remembers one upstream's last success and last failure, from the outcome of every request sent to it. */
export class UpstreamHealth {
  private state: UpstreamHealthSnapshot = {};

  constructor(private readonly clock: Clock) {}

  observe(outcome: string): void {
    const at = this.clock.now();
    if (isFailure(outcome)) this.state = { ...this.state, lastFailure: { at, outcome } };
    else this.state = { ...this.state, lastSuccess: at };
  }

  snapshot(): UpstreamHealthSnapshot {
    return this.state;
  }
}
