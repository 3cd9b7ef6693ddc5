import { AdmissionregistrationV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import { caMatches, generateCa, isConsistent, issueServingCert, LOCAL_IPS, notAfter, serviceDnsNames, type CertBundle } from './certs.js';
import { statusOf } from './kube.js';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from './labels.js';
import type { WebhookMetrics } from './metrics.js';
import { MemoryTlsSource, type TlsMaterial, type TlsSource } from './tls-source.js';

/**
 * Generated-certificate mode with a cluster: the CA and serving certificate live in a Secret shared by every
 * replica; the CA goes into the MutatingWebhookConfiguration's caBundle; both are renewed before expiry.
 */
export interface CertSecretOptions {
  kc: KubeConfig;
  namespace: string;
  secretName: string;
  serviceName: string;
  webhookConfigurationName: string;
  validityMs: number;
  renewBeforeMs: number;
  /** How often the Secret and the caBundle are checked (renewal by another replica, a re-applied manifest). */
  checkIntervalMs?: number;
  clock: Clock;
  logger: Logger;
  metrics: WebhookMetrics;
}

const KEYS = { caCert: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key' } as const;

function decode(secret: V1Secret | undefined): Partial<CertBundle> {
  const data = secret?.data ?? {};
  const out: Partial<CertBundle> = {};
  for (const [field, key] of Object.entries(KEYS) as Array<[keyof CertBundle, string]>) {
    const v = data[key];
    if (v) out[field] = Buffer.from(v, 'base64').toString('utf8');
  }
  return out;
}

function encode(bundle: CertBundle): Record<string, string> {
  const data: Record<string, string> = {};
  for (const [field, key] of Object.entries(KEYS) as Array<[keyof CertBundle, string]>) data[key] = Buffer.from(bundle[field]).toString('base64');
  return data;
}

export class CertSecretManager implements TlsSource {
  private readonly core: CoreV1Api;
  private readonly admission: AdmissionregistrationV1Api;
  private memory: MemoryTlsSource | undefined;
  private bundle: CertBundle | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly pending: Array<(m: TlsMaterial) => void> = [];

  constructor(private readonly opts: CertSecretOptions) {
    this.core = opts.kc.makeApiClient(CoreV1Api);
    this.admission = opts.kc.makeApiClient(AdmissionregistrationV1Api);
  }

  /** Loads or creates the certificates and patches the caBundle once; then checks again in the background. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.sync();
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.sync()
        .catch((err: unknown) => this.opts.logger.error({ err }, 'certificate check failed; will retry'))
        .finally(() => this.schedule());
    }, this.opts.checkIntervalMs ?? 60_000);
    this.timer.unref();
  }

  private fresh(bundle: Partial<CertBundle>): bundle is CertBundle {
    if (!isConsistent(bundle)) return false;
    const expiry = notAfter(bundle.cert);
    return expiry !== undefined && expiry - this.opts.clock.now() > this.opts.renewBeforeMs;
  }

  private issue(previous: Partial<CertBundle>): CertBundle {
    const now = this.opts.clock.now();
    // Keep the CA (and so the caBundle) while it outlives the new serving certificate; else start a new CA.
    const keep = previous.caCert && previous.caKey && caMatches(previous.caCert, previous.caKey) ? { cert: previous.caCert, key: previous.caKey } : undefined;
    const caExpiry = keep ? notAfter(keep.cert) : undefined;
    const ca =
      keep && caExpiry !== undefined && caExpiry - now > this.opts.validityMs + this.opts.renewBeforeMs
        ? keep
        : generateCa({ now, validityMs: this.opts.validityMs * 3 });
    const serving = issueServingCert(ca, {
      now,
      validityMs: this.opts.validityMs,
      dnsNames: serviceDnsNames(this.opts.serviceName, this.opts.namespace),
      ipAddresses: LOCAL_IPS,
    });
    return { caCert: ca.cert, caKey: ca.key, cert: serving.cert, key: serving.key };
  }

  /** Reads the Secret, renews what needs it (optimistic concurrency: a 409 means another replica won), patches the caBundle. */
  async sync(): Promise<void> {
    const { namespace, secretName: name } = this.opts;
    let bundle: CertBundle | undefined;
    for (let attempt = 0; attempt < 5 && !bundle; attempt++) {
      let secret: V1Secret | undefined;
      try {
        secret = await this.core.readNamespacedSecret({ name, namespace });
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
      const current = decode(secret);
      if (this.fresh(current)) {
        bundle = current;
        break;
      }
      const next = this.issue(current);
      const body: V1Secret = {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'kubernetes.io/tls',
        metadata: {
          name,
          namespace,
          labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
          ...(secret?.metadata?.resourceVersion ? { resourceVersion: secret.metadata.resourceVersion } : {}),
        },
        data: encode(next),
      };
      try {
        if (secret) await this.core.replaceNamespacedSecret({ name, namespace, body });
        else await this.core.createNamespacedSecret({ namespace, body });
        this.opts.logger.info({ secret: `${namespace}/${name}`, notAfter: new Date(notAfter(next.cert) ?? 0).toISOString() }, 'serving certificate issued');
        bundle = next;
      } catch (err) {
        if (statusOf(err) !== 409) throw err;
        // Another replica wrote first: read again and use theirs.
      }
    }
    if (!bundle) throw new Error(`could not settle the certificate Secret ${namespace}/${name}`);
    this.use(bundle);
    await this.patchCaBundle(bundle.caCert);
  }

  private use(bundle: CertBundle): void {
    if (this.bundle && this.bundle.cert === bundle.cert && this.bundle.key === bundle.key) return;
    this.bundle = bundle;
    const material = { cert: bundle.cert, key: bundle.key };
    if (!this.memory) {
      this.memory = new MemoryTlsSource(material);
      for (const l of this.pending.splice(0)) this.memory.onChange(l);
    } else {
      this.memory.set(material);
    }
    this.opts.metrics.certReloads.inc({ result: 'ok' });
    const expiry = notAfter(bundle.cert);
    if (expiry !== undefined) this.opts.metrics.certNotAfter.set(expiry / 1000);
  }

  /** Sets caBundle on every webhook of the configuration that lacks this CA. A missing configuration is not fatal. */
  async patchCaBundle(caCert: string): Promise<boolean> {
    const name = this.opts.webhookConfigurationName;
    const wanted = Buffer.from(caCert).toString('base64');
    let mwc;
    try {
      mwc = await this.admission.readMutatingWebhookConfiguration({ name });
    } catch (err) {
      if (statusOf(err) === 404) {
        this.opts.logger.warn({ mutatingWebhookConfiguration: name }, 'MutatingWebhookConfiguration not found; caBundle not set (will retry)');
        return false;
      }
      throw err;
    }
    const ops: unknown[] = [];
    (mwc.webhooks ?? []).forEach((w, i) => {
      if (w.clientConfig?.caBundle === wanted) return;
      // `test` guards the index: if the list changed since we read it, the patch fails and the next check retries.
      ops.push({ op: 'test', path: `/webhooks/${i}/name`, value: w.name });
      ops.push({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: wanted });
    });
    if (ops.length === 0) return true;
    await this.admission.patchMutatingWebhookConfiguration({ name, body: ops }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch));
    this.opts.logger.info({ mutatingWebhookConfiguration: name, webhooks: ops.length / 2 }, 'caBundle patched');
    return true;
  }

  current(): TlsMaterial {
    if (!this.memory) throw new Error('certificates not loaded yet: call start() first');
    return this.memory.current();
  }
  onChange(listener: (material: TlsMaterial) => void): void {
    if (this.memory) this.memory.onChange(listener);
    else this.pending.push(listener);
  }
  close(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.memory?.close();
  }
}
