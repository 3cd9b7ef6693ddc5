import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { AggregatorRegistry, type Registry } from 'prom-client';

const REQUEST = 'mirrorgate:metrics-request';
const REPLY = 'mirrorgate:metrics-reply';
/** A worker asking for the sum waits this long for the primary (which itself waits up to 5 s for the workers). */
const REPLY_TIMEOUT_MS = 10_000;

interface MetricsRequest {
  type: typeof REQUEST;
  id: string;
}

interface MetricsReply {
  type: typeof REPLY;
  id: string;
  text?: string;
  error?: string;
}

/**
 * In the primary: answers a worker's request for every worker's metrics, summed (prom-client's
 * AggregatorRegistry asks each worker for its registry over the cluster's IPC channel).
 */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker: Worker, message: unknown) => {
    const m = message as Partial<MetricsRequest>;
    if (m?.type !== REQUEST || typeof m.id !== 'string') return;
    const id = m.id;
    aggregator.clusterMetrics().then(
      (text) => send(worker, { type: REPLY, id, text }),
      (err: unknown) => send(worker, { type: REPLY, id, error: (err as Error).message }),
    );
  });
}

function send(worker: Worker, reply: MetricsReply): void {
  if (worker.isConnected()) worker.send(reply);
}

/**
 * In a worker: offers this worker's registry to the primary's aggregation, and returns what /metrics
 * answers: the sum over all workers, asked of the primary.
 */
export function clusterMetricsText(registry: Registry): () => Promise<string> {
  AggregatorRegistry.setRegistries([registry]);
  // Constructed for its side effect: it installs the listener that answers the primary's requests.
  new AggregatorRegistry();
  const waiting = new Map<string, { resolve: (text: string) => void; reject: (err: Error) => void }>();
  process.on('message', (message: unknown) => {
    const m = message as Partial<MetricsReply>;
    if (m?.type !== REPLY || typeof m.id !== 'string') return;
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    if (typeof m.text === 'string') w.resolve(m.text);
    else w.reject(new Error(`metrics of the other workers: ${m.error ?? 'no answer'}`));
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = randomBytes(8).toString('hex');
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error('the primary process did not answer with the workers\' metrics'));
      }, REPLY_TIMEOUT_MS);
      waiting.set(id, {
        resolve: (text) => {
          clearTimeout(timer);
          resolve(text);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      const request: MetricsRequest = { type: REQUEST, id };
      process.send!(request);
    });
}
