import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { generateBundle } from '../../src/webhook/certs.js';

/**
 * A small Kubernetes API server for tests: namespaces, secrets and mutatingwebhookconfigurations over HTTPS, with
 * the real REST shapes (lists with resourceVersion, Status errors, optimistic concurrency, JSON/merge patch) and the
 * real watch protocol (`?watch=true`, one JSON event per line, events after the given resourceVersion, DELETED when
 * an object stops matching the label selector, 410 Gone for a resourceVersion too old).
 */

type Obj = { apiVersion?: string; kind?: string; metadata: Meta; [key: string]: unknown };
type Meta = { name?: string; namespace?: string; resourceVersion?: string; uid?: string; labels?: Record<string, string>; [key: string]: unknown };

interface ResourceInfo {
  kind: string;
  apiVersion: string;
  namespaced: boolean;
}

const RESOURCES: Record<string, ResourceInfo> = {
  namespaces: { kind: 'Namespace', apiVersion: 'v1', namespaced: false },
  secrets: { kind: 'Secret', apiVersion: 'v1', namespaced: true },
  mutatingwebhookconfigurations: { kind: 'MutatingWebhookConfiguration', apiVersion: 'admissionregistration.k8s.io/v1', namespaced: false },
};

interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  resource: string;
  object: Obj;
  /** The object before a change, to turn a MODIFIED into ADDED/DELETED for selector watches. */
  previous: Obj | undefined;
  rv: number;
}

interface Watcher {
  resource: string;
  namespace: string | undefined;
  filter: (o: Obj) => boolean;
  res: ServerResponse;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: string;
  contentType: string | undefined;
}

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

function parseLabelSelector(text: string | null): (labels: Record<string, string>) => boolean {
  if (!text) return () => true;
  const terms = text.split(',').map((t) => t.trim()).filter(Boolean).map((t) => {
    let m = /^([^!=]+)!=(.*)$/.exec(t);
    if (m) return (l: Record<string, string>) => l[m![1]!] !== m![2];
    m = /^([^!=]+)==?(.*)$/.exec(t);
    if (m) return (l: Record<string, string>) => l[m![1]!] === m![2];
    if (t.startsWith('!')) return (l: Record<string, string>) => !(t.slice(1) in l);
    return (l: Record<string, string>) => t in l;
  });
  return (labels) => terms.every((f) => f(labels));
}

function parseFieldSelector(text: string | null): (o: Obj) => boolean {
  if (!text) return () => true;
  const terms = text.split(',').map((t) => {
    const m = /^([^!=]+)(!=|==?)(.*)$/.exec(t.trim());
    if (!m) throw new HttpError(400, 'BadRequest', `invalid field selector ${t}`);
    const [, field, op, value] = m;
    const get = (o: Obj): string | undefined =>
      field === 'metadata.name' ? o.metadata.name : field === 'metadata.namespace' ? o.metadata.namespace : undefined;
    return (o: Obj) => (op === '!=' ? get(o) !== value : get(o) === value);
  });
  return (o) => terms.every((f) => f(o));
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export class FakeKubeApi {
  private server: Server | undefined;
  private closing = false;
  private readonly sockets = new Set<Socket>();
  private ca = '';
  private rv = 1;
  private readonly objects = new Map<string, Obj>();
  private readonly history: WatchEvent[] = [];
  private readonly watchers = new Set<Watcher>();
  /** Events older than this resourceVersion are forgotten: a watch from before it gets 410 Gone. */
  private compactedBefore = 0;
  /** Requests seen, in order. */
  readonly requests: RecordedRequest[] = [];
  /** Requests to fail with 500 while > 0, counted down (to test restarts with backoff). */
  failListsAndWatches = 0;
  url = '';

  async start(): Promise<string> {
    const bundle = generateBundle({ now: Date.now(), validityMs: 86_400_000, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    this.ca = bundle.caCert;
    this.server = createServer({ cert: bundle.cert, key: bundle.key }, (req, res) => void this.handle(req, res));
    // Every socket is tracked, including those still in the TLS handshake, which closeAllConnections does not see:
    // a watch arriving on one of them during close would otherwise keep the server open.
    this.server.on('connection', (socket: Socket) => {
      if (this.closing) return void socket.destroy();
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  /** A KubeConfig for @kubernetes/client-node pointing at this server, verifying its CA. */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, caData: Buffer.from(this.ca).toString('base64'), skipTLSVerify: false }],
      users: [{ name: 'tester', token: 'test-token' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'tester' }],
      currentContext: 'fake',
    });
    return kc;
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
    if (!this.server) return;
    await new Promise<void>((resolve) => {
      this.server!.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
  }

  /** Ends every open watch, as an API server does on timeout; clients resume from their resourceVersion. */
  endWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  /** Forgets the event history, so resuming watches get 410 Gone and must list again. */
  compact(): void {
    this.compactedBefore = this.rv;
    this.history.length = 0;
  }

  // ---- direct access for test set-up and assertions (goes through the same event machinery) ----

  put(resource: string, obj: Obj): Obj {
    const info = RESOURCES[resource]!;
    const key = this.key(resource, obj.metadata.namespace, obj.metadata.name!);
    const previous = this.objects.get(key);
    const stored = this.stamp(resource, info, structuredClone(obj), previous);
    this.objects.set(key, stored);
    this.emit(previous ? 'MODIFIED' : 'ADDED', resource, stored, previous);
    return structuredClone(stored);
  }

  get(resource: string, name: string, namespace?: string): Obj | undefined {
    const o = this.objects.get(this.key(resource, namespace, name));
    return o ? structuredClone(o) : undefined;
  }

  list(resource: string, namespace?: string): Obj[] {
    return [...this.objects.entries()]
      .filter(([k]) => k.startsWith(`${resource}/${namespace ?? ''}`))
      .map(([, o]) => structuredClone(o));
  }

  remove(resource: string, name: string, namespace?: string): void {
    const key = this.key(resource, namespace, name);
    const previous = this.objects.get(key);
    if (!previous) return;
    this.objects.delete(key);
    this.emit('DELETED', resource, { ...previous, metadata: { ...previous.metadata, resourceVersion: String(++this.rv) } }, previous);
    if (resource === 'namespaces') for (const s of this.list('secrets', name)) this.remove('secrets', s.metadata.name!, name);
  }

  // ---- internals ----

  private key(resource: string, namespace: string | undefined, name: string): string {
    return `${resource}/${RESOURCES[resource]?.namespaced ? (namespace ?? '') : ''}/${name}`;
  }

  private stamp(resource: string, info: ResourceInfo, obj: Obj, previous: Obj | undefined): Obj {
    obj.apiVersion = info.apiVersion;
    obj.kind = info.kind;
    obj.metadata.uid = previous?.metadata.uid ?? randomUUID();
    obj.metadata.creationTimestamp = previous?.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    obj.metadata.resourceVersion = String(++this.rv);
    if (!info.namespaced) delete obj.metadata.namespace;
    if (resource === 'namespaces') obj.status = { phase: 'Active' };
    return obj;
  }

  private emit(type: WatchEvent['type'], resource: string, object: Obj, previous: Obj | undefined): void {
    const event: WatchEvent = { type, resource, object: structuredClone(object), previous, rv: Number(object.metadata.resourceVersion) };
    this.history.push(event);
    for (const w of this.watchers) this.send(w, event);
  }

  /** Sends an event as the watch cache would: through the watcher's selectors. */
  private send(w: Watcher, e: WatchEvent): void {
    if (e.resource !== w.resource) return;
    if (w.namespace !== undefined && e.object.metadata.namespace !== w.namespace) return;
    const now = w.filter(e.object);
    const before = e.previous !== undefined && w.filter(e.previous);
    let type: WatchEvent['type'] | undefined;
    if (e.type === 'ADDED') type = now ? 'ADDED' : undefined;
    else if (e.type === 'DELETED') type = before ? 'DELETED' : undefined;
    else type = now && before ? 'MODIFIED' : now ? 'ADDED' : before ? 'DELETED' : undefined;
    if (!type) return;
    w.res.write(`${JSON.stringify({ type, object: e.object })}\n`);
  }

  private status(res: ServerResponse, code: number, reason: string, message: string): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }));
  }

  private json(res: ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private async body(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (!text) return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new HttpError(400, 'BadRequest', 'body is not JSON');
    }
  }

  private route(path: string): { resource: string; namespace: string | undefined; name: string | undefined } {
    let m = /^\/api\/v1\/namespaces\/([^/]+)\/(secrets)(?:\/([^/]+))?$/.exec(path);
    if (m) return { resource: m[2]!, namespace: m[1], name: m[3] };
    m = /^\/api\/v1\/(namespaces|secrets)(?:\/([^/]+))?$/.exec(path);
    if (m) {
      if (m[1] === 'secrets' && m[2]) throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
      return { resource: m[1]!, namespace: undefined, name: m[2] };
    }
    m = /^\/apis\/admissionregistration\.k8s\.io\/v1\/(mutatingwebhookconfigurations)(?:\/([^/]+))?$/.exec(path);
    if (m) return { resource: m[1]!, namespace: undefined, name: m[2] };
    throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://fake');
    this.requests.push({ method: req.method ?? 'GET', path: url.pathname, query: url.search, contentType: req.headers['content-type'] });
    try {
      if (req.headers.authorization !== 'Bearer test-token') throw new HttpError(401, 'Unauthorized', 'Unauthorized');
      const { resource, namespace, name } = this.route(url.pathname);
      const info = RESOURCES[resource]!;
      const q = url.searchParams;
      if (req.method === 'GET' && !name) {
        if (this.failListsAndWatches > 0) {
          this.failListsAndWatches--;
          throw new HttpError(500, 'InternalError', 'injected failure');
        }
        const labels = parseLabelSelector(q.get('labelSelector'));
        const fields = parseFieldSelector(q.get('fieldSelector'));
        const filter = (o: Obj): boolean => labels(o.metadata.labels ?? {}) && fields(o);
        if (q.get('watch') === 'true' || q.get('watch') === '1') return this.watch(req, res, resource, namespace, filter, q.get('resourceVersion'));
        const items = [...this.objects.entries()]
          .filter(([k]) => k.startsWith(`${resource}/`))
          .map(([, o]) => o)
          .filter((o) => (namespace === undefined || o.metadata.namespace === namespace) && filter(o));
        return this.json(res, 200, { kind: `${info.kind}List`, apiVersion: info.apiVersion, metadata: { resourceVersion: String(this.rv) }, items });
      }
      if (!name && req.method === 'POST') return await this.create(req, res, resource, info, namespace);
      if (!name) throw new HttpError(405, 'MethodNotAllowed', 'method not allowed');
      const key = this.key(resource, namespace, name);
      const existing = this.objects.get(key);
      if (namespace !== undefined && !this.objects.has(this.key('namespaces', undefined, namespace)) && req.method !== 'GET') {
        throw new HttpError(404, 'NotFound', `namespaces "${namespace}" not found`);
      }
      if (!existing) throw new HttpError(404, 'NotFound', `${resource} "${name}" not found`);
      switch (req.method) {
        case 'GET':
          return this.json(res, 200, existing);
        case 'DELETE':
          this.remove(resource, name, namespace);
          return this.json(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, kind: resource, uid: existing.metadata.uid } });
        case 'PUT': {
          const obj = (await this.body(req)) as Obj | undefined;
          if (!obj?.metadata || obj.metadata.name !== name) throw new HttpError(400, 'BadRequest', 'the name of the object does not match the name on the URL');
          if (obj.metadata.resourceVersion && obj.metadata.resourceVersion !== existing.metadata.resourceVersion) {
            throw new HttpError(409, 'Conflict', `Operation cannot be fulfilled on ${resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`);
          }
          if (resource === 'secrets' && (obj.type ?? 'Opaque') !== (existing.type ?? 'Opaque')) throw new HttpError(422, 'Invalid', `Secret "${name}" is invalid: type: Invalid value: field is immutable`);
          obj.metadata.namespace = namespace;
          return this.json(res, 200, this.put(resource, obj));
        }
        case 'PATCH': {
          const patch = await this.body(req);
          const type = req.headers['content-type']?.split(';')[0]?.trim();
          let next: Obj;
          if (type === 'application/json-patch+json') {
            try {
              next = fastJsonPatch.applyPatch(structuredClone(existing), patch as Operation[], true, false).newDocument;
            } catch (err) {
              throw new HttpError(422, 'Invalid', `the server rejected our request due to an error in our request: ${(err as Error).message}`);
            }
          } else if (type === 'application/merge-patch+json' || type === 'application/strategic-merge-patch+json') {
            next = mergePatch(existing, patch) as Obj;
          } else {
            throw new HttpError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json`);
          }
          next.metadata.name = name;
          next.metadata.namespace = namespace;
          return this.json(res, 200, this.put(resource, next));
        }
        default:
          throw new HttpError(405, 'MethodNotAllowed', 'method not allowed');
      }
    } catch (err) {
      if (err instanceof HttpError) return this.status(res, err.code, err.reason, err.message);
      return this.status(res, 500, 'InternalError', (err as Error).message);
    }
  }

  private async create(req: IncomingMessage, res: ServerResponse, resource: string, info: ResourceInfo, namespace: string | undefined): Promise<void> {
    const obj = (await this.body(req)) as Obj | undefined;
    if (!obj?.metadata?.name) throw new HttpError(422, 'Invalid', 'metadata.name: Required value');
    if (namespace !== undefined) {
      if (obj.metadata.namespace && obj.metadata.namespace !== namespace) throw new HttpError(400, 'BadRequest', 'the namespace of the object does not match the namespace on the URL');
      if (!this.objects.has(this.key('namespaces', undefined, namespace))) throw new HttpError(404, 'NotFound', `namespaces "${namespace}" not found`);
      obj.metadata.namespace = namespace;
    }
    if (this.objects.has(this.key(resource, namespace, obj.metadata.name))) {
      throw new HttpError(409, 'AlreadyExists', `${resource} "${obj.metadata.name}" already exists`);
    }
    delete obj.metadata.resourceVersion;
    if (!info.namespaced) delete obj.metadata.namespace;
    this.json(res, 201, this.put(resource, obj));
  }

  private watch(req: IncomingMessage, res: ServerResponse, resource: string, namespace: string | undefined, filter: (o: Obj) => boolean, rvText: string | null): void {
    const from = rvText ? Number(rvText) : this.rv;
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    if (rvText && from < this.compactedBefore) {
      res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${from} (${this.compactedBefore})`, reason: 'Expired', code: 410 } })}\n`);
      return;
    }
    res.flushHeaders(); // as the API server does: the client's watch() resolves on the headers
    const w: Watcher = { resource, namespace, filter, res };
    for (const e of this.history) if (e.rv > from) this.send(w, e);
    this.watchers.add(w);
    const drop = (): void => void this.watchers.delete(w);
    req.on('close', drop);
    res.on('close', drop);
  }
}
