import { randomBytes } from 'node:crypto';
import { Agent, createServer, request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A stand-in for Docker Hub in front of a real registry (usually Debian's docker-registry): Docker Hub's token
 * auth (401 Bearer challenge, `/token` endpoint, optional Basic credentials), `ratelimit-remaining` on
 * manifest GETs, tag pagination, optional blob redirects to a "CDN" on another origin, a request log, fault
 * injection, and down/up on the same port. Bodies are streamed, never buffered.
 */

export type RequestKind =
  | 'base'
  | 'catalog'
  | 'manifest'
  | 'blob'
  | 'upload'
  | 'tags'
  | 'referrers'
  | 'token'
  | 'other';

export interface LoggedRequest {
  method: string;
  /** Path and query, as received. */
  path: string;
  kind: RequestKind;
  /** Repository name for repository endpoints. */
  repo?: string;
  /** Status sent; 0 while in progress or when no answer was sent (refuse). */
  status: number;
  /** A valid token came with it (for `token`: valid Basic credentials, or anonymous allowed). */
  authorized: boolean;
  accept?: string;
  range?: string;
  /** The fault applied, if any. */
  fault?: FaultAction['type'];
}

export interface CdnRequest {
  method: string;
  path: string;
  status: number;
  /** An Authorization header arrived at the CDN. It must never: that would leak registry credentials. */
  hadAuthorization: boolean;
  range?: string;
  fault?: FaultAction['type'];
}

export interface RequestMatch {
  method?: string;
  /** `'cdn'` matches requests to the CDN listener. */
  kind?: RequestKind | 'cdn';
  pathIncludes?: string;
}

export type FaultAction =
  /** Answer with this status (and a spec error body unless `body` is given), without asking the target. */
  | { type: 'status'; status: number; headers?: Record<string, string>; body?: string | Buffer }
  /** Send the real headers and the first `afterBytes` bytes of the real body, then destroy the socket. */
  | { type: 'cut'; afterBytes: number }
  /** The real headers and a body of the same length with a byte flipped in the middle. */
  | { type: 'corrupt' }
  /** `Content-Length` `dropBytes` smaller than the real one, and that many bytes: a clean, short answer. */
  | { type: 'truncate-length'; dropBytes: number }
  /** Send the headers, then nothing for `ms`, then the body. */
  | { type: 'stall'; ms: number }
  /** Wait `ms` before doing anything. */
  | { type: 'delay'; ms: number }
  /** Destroy the socket at once, no answer. */
  | { type: 'refuse' };

export interface Fault {
  match: RequestMatch;
  /** How many matching requests it applies to (default 1; `Infinity` for all). Spent faults are removed. */
  times?: number;
  action: FaultAction;
}

export interface HubFrontOptions {
  /** The registry behind the front, e.g. `registry.url`. */
  target: string;
  /** When set, `/token` requires these Basic credentials; otherwise anonymous tokens are given to anyone. */
  credentials?: { username: string; password: string };
  /** Token lifetime (default 300 s), sent as `expires_in` and enforced. */
  tokenTtlSeconds?: number;
  /** `'cdn'`: blob GETs answer 307 to a second listener on another port (another origin). */
  redirectBlobsTo?: 'cdn';
  /** Initial `ratelimit-remaining` (default 100); each manifest GET spends one (not enforced: use a fault). */
  rateLimitRemaining?: number;
  /** Page size for `tags/list` when the client sends no `n` (default: everything in one page). */
  tagsPageSize?: number;
  /**
   * Serve the OCI 1.1 referrers API (`GET /v2/<name>/referrers/<digest>`, `artifactType` filter) from the
   * referrers fallback tag (`sha256-<hex>`) in the target. Off by default: the request goes to the target
   * (distribution 2.8 answers 404).
   */
  referrers?: boolean;
  /** Address of the CDN listener (default 127.0.0.1; e.g. 127.0.0.2 for another host name too). */
  cdnHost?: string;
  /** `service` in the challenge and token requests (default `hub-front`). */
  service?: string;
}

export interface HubFront {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** `127.0.0.1:PORT`. */
  readonly host: string;
  readonly port: number;
  /** The CDN's origin when `redirectBlobsTo: 'cdn'`. */
  readonly cdnUrl: string | undefined;
  readonly requests: LoggedRequest[];
  readonly cdnRequests: CdnRequest[];
  /**
   * Push faults here; each applies to its next `times` matching requests, after the auth check (a request
   * that gets a 401 challenge does not spend a fault; `token` requests are matched before they are served).
   * Body faults (cut, corrupt, truncate-length, stall) act on proxied answers; tag lists and emulated
   * referrers answered by the front itself only honour status, delay and refuse.
   */
  readonly faults: Fault[];
  /** Requests in the log matching all given fields. */
  count(match?: RequestMatch): number;
  /** Clears the request logs (front and CDN). Faults stay. */
  reset(): void;
  /** What the next manifest GET will report (after spending one). Settable. */
  rateLimitRemaining: number;
  /** Forgets every token issued: the next request with an old token gets a 401 challenge. */
  revokeTokens(): void;
  /** Every connection is refused (listeners closed, open sockets destroyed) until `up()`. */
  down(): Promise<void>;
  /** Listens again on the same ports. */
  up(): Promise<void>;
  readonly isDown: boolean;
  stop(): Promise<void>;
}

interface Grant {
  expiresAt: number;
  /** repository name -> actions */
  repos: Map<string, Set<string>>;
  catalog: boolean;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'upgrade',
]);

const NAME = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*';
const ROUTES: [RegExp, RequestKind][] = [
  [new RegExp(`^/v2/(${NAME})/manifests/([^/]+)$`), 'manifest'],
  [new RegExp(`^/v2/(${NAME})/blobs/uploads(?:/.*)?$`), 'upload'],
  [new RegExp(`^/v2/(${NAME})/blobs/([^/]+)$`), 'blob'],
  [new RegExp(`^/v2/(${NAME})/tags/list$`), 'tags'],
  [new RegExp(`^/v2/(${NAME})/referrers/([^/]+)$`), 'referrers'],
];

/** Classifies a request path (without query) the way the request log does. */
export function classify(pathname: string): { kind: RequestKind; repo?: string; reference?: string } {
  if (pathname === '/token') return { kind: 'token' };
  if (pathname === '/v2/' || pathname === '/v2') return { kind: 'base' };
  if (pathname === '/v2/_catalog') return { kind: 'catalog' };
  for (const [re, kind] of ROUTES) {
    const m = re.exec(pathname);
    if (m) {
      const out: { kind: RequestKind; repo?: string; reference?: string } = { kind };
      if (m[1] !== undefined) out.repo = m[1];
      if (m[2] !== undefined) out.reference = m[2];
      return out;
    }
  }
  return { kind: 'other' };
}

function matches(m: RequestMatch, r: { method: string; kind: RequestKind | 'cdn'; path: string }): boolean {
  return (
    (m.method === undefined || m.method.toUpperCase() === r.method) &&
    (m.kind === undefined || m.kind === r.kind) &&
    (m.pathIncludes === undefined || r.path.includes(m.pathIncludes))
  );
}

function errorBody(code: string, message: string, detail?: unknown): string {
  return JSON.stringify({ errors: [{ code, message, detail: detail ?? null }] });
}

const ERROR_CODES: Record<number, string> = {
  400: 'UNSUPPORTED',
  401: 'UNAUTHORIZED',
  403: 'DENIED',
  404: 'NAME_UNKNOWN',
  429: 'TOOMANYREQUESTS',
};

function sendJson(res: ServerResponse, status: number, body: string, headers: OutgoingHttpHeaders = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'docker-distribution-api-version': 'registry/2.0',
    ...headers,
  });
  res.end(body);
}

/** Writes a chunk and waits until it is handed to the socket (so a following destroy does not lose it). */
function writeFlushed(res: ServerResponse, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (res.destroyed) {
      reject(new Error('client went away'));
      return;
    }
    res.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}

function headerValue(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function parseScopes(values: string[]): Grant['repos'] & { catalog?: boolean } {
  const repos: Grant['repos'] & { catalog?: boolean } = new Map();
  for (const value of values) {
    for (const scope of value.split(' ').filter(Boolean)) {
      const first = scope.indexOf(':');
      const last = scope.lastIndexOf(':');
      if (first < 0 || last <= first) continue;
      const type = scope.slice(0, first);
      const name = scope.slice(first + 1, last);
      const actions = scope.slice(last + 1).split(',');
      if (type === 'registry' && name === 'catalog') repos.catalog = true;
      if (!type.startsWith('repository')) continue;
      const set = repos.get(name) ?? new Set<string>();
      for (const a of actions) set.add(a);
      repos.set(name, set);
    }
  }
  return repos;
}

export async function startHubFront(opts: HubFrontOptions): Promise<HubFront> {
  const target = new URL(opts.target);
  const targetOrigin = target.origin;
  const service = opts.service ?? 'hub-front';
  const ttl = opts.tokenTtlSeconds ?? 300;
  const rateLimit = opts.rateLimitRemaining ?? 100;
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const tokens = new Map<string, Grant>();
  const cdnSignatures = new Set<string>();
  const requests: LoggedRequest[] = [];
  const cdnRequests: CdnRequest[] = [];
  const faults: Fault[] = [];
  const used = new Map<Fault, number>();
  let remaining = rateLimit;
  let isDown = false;
  let frontOrigin = '';
  let cdnOrigin: string | undefined;

  const takeFault = (r: { method: string; kind: RequestKind | 'cdn'; path: string }): FaultAction | undefined => {
    const i = faults.findIndex((f) => matches(f.match, r));
    if (i < 0) return undefined;
    const fault = faults[i] as Fault;
    const n = (used.get(fault) ?? 0) + 1;
    if (n >= (fault.times ?? 1)) {
      faults.splice(i, 1);
      used.delete(fault);
    } else {
      used.set(fault, n);
    }
    return fault.action;
  };

  const rewrite = (value: string): string => value.split(targetOrigin).join(frontOrigin);

  /** Sends `upRes` to `res`, applying a body fault if any. Never buffers. */
  const relay = async (
    req: IncomingMessage,
    res: ServerResponse,
    upRes: IncomingMessage,
    extraHeaders: OutgoingHttpHeaders,
    fault: FaultAction | undefined,
    filterHeaders: (name: string) => boolean = () => true,
  ): Promise<void> => {
    const headers: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(upRes.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name) || !filterHeaders(name)) continue;
      headers[name] = name === 'location' || name === 'link' ? (Array.isArray(value) ? value.map(rewrite) : rewrite(value)) : value;
    }
    Object.assign(headers, extraHeaders);
    const status = upRes.statusCode ?? 502;
    const realLength = Number(upRes.headers['content-length'] ?? NaN);
    const noBody = req.method === 'HEAD' || status === 204 || status === 304;

    if (fault?.type === 'truncate-length' && Number.isFinite(realLength) && !noBody) {
      const keep = Math.max(0, realLength - fault.dropBytes);
      headers['content-length'] = keep;
      res.writeHead(status, headers);
      let sent = 0;
      for await (const chunk of upRes as AsyncIterable<Buffer>) {
        const part = chunk.subarray(0, keep - sent);
        if (part.length > 0) await writeFlushed(res, part);
        sent += part.length;
        if (sent >= keep) break;
      }
      upRes.destroy();
      res.end();
      return;
    }

    res.writeHead(status, headers);
    if (noBody) {
      upRes.resume();
      if (fault?.type === 'cut') res.socket?.destroy();
      else res.end();
      return;
    }
    if (fault?.type === 'cut') {
      res.flushHeaders();
      let sent = 0;
      for await (const chunk of upRes as AsyncIterable<Buffer>) {
        const part = chunk.subarray(0, fault.afterBytes - sent);
        if (part.length > 0) await writeFlushed(res, part);
        sent += part.length;
        if (sent >= fault.afterBytes) break;
      }
      upRes.destroy();
      res.socket?.destroy();
      return;
    }
    if (fault?.type === 'stall') {
      res.flushHeaders();
      await Promise.race([sleep(fault.ms), new Promise((resolve) => res.once('close', resolve))]);
    }
    if (fault?.type === 'corrupt') {
      const flipAt = Number.isFinite(realLength) ? Math.floor(realLength / 2) : 0;
      let offset = 0;
      const flip = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          if (flipAt >= offset && flipAt < offset + chunk.length) {
            const copy = Buffer.from(chunk);
            copy[flipAt - offset] = (copy[flipAt - offset] ?? 0) ^ 0xff;
            chunk = copy;
          }
          offset += chunk.length;
          cb(null, chunk);
        },
      });
      await pipeline(upRes, flip, res);
      return;
    }
    await pipeline(upRes, res);
  };

  /** Forwards a request to the target (streaming both ways) and relays the answer. */
  const forward = async (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    opts2: {
      extraHeaders?: OutgoingHttpHeaders;
      fault?: FaultAction | undefined;
      stripRequestHeaders?: string[];
      filterHeaders?: (name: string) => boolean;
      method?: string;
    } = {},
  ): Promise<void> => {
    const headers: OutgoingHttpHeaders = {};
    const strip = new Set(['host', 'authorization', ...(opts2.stripRequestHeaders ?? [])]);
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name) && !strip.has(name)) headers[name] = value;
    }
    headers.host = target.host;
    const upReq = httpRequest({
      host: target.hostname,
      port: target.port,
      method: opts2.method ?? req.method,
      path,
      headers,
      agent,
    });
    const upResP = new Promise<IncomingMessage>((resolve, reject) => {
      upReq.once('response', resolve);
      upReq.once('error', reject);
    });
    res.once('close', () => {
      if (!res.writableFinished) upReq.destroy();
    });
    let upRes: IncomingMessage;
    try {
      if (req.method === 'GET' || req.method === 'HEAD') {
        req.resume();
        upReq.end();
      } else {
        void pipeline(req, upReq).catch(() => upReq.destroy());
      }
      upRes = await upResP;
    } catch (err) {
      sendJson(res, 502, errorBody('UNAVAILABLE', `target unreachable: ${(err as Error).message}`));
      return;
    }
    await relay(req, res, upRes, opts2.extraHeaders ?? {}, opts2.fault, opts2.filterHeaders);
  };

  /** GETs a JSON document from the target (small: tag lists, referrers indexes). */
  const getTargetJson = async (path: string, accept: string): Promise<{ status: number; body: string }> => {
    const res = await fetch(`${targetOrigin}${path}`, { headers: { accept } });
    return { status: res.status, body: await res.text() };
  };

  const checkToken = (req: IncomingMessage): Grant | undefined => {
    const auth = headerValue(req.headers, 'authorization');
    const m = auth ? /^Bearer\s+(\S+)$/i.exec(auth) : null;
    if (!m) return undefined;
    const grant = tokens.get(m[1] as string);
    if (!grant) return undefined;
    if (grant.expiresAt <= Date.now()) {
      tokens.delete(m[1] as string);
      return undefined;
    }
    return grant;
  };

  const basicOk = (req: IncomingMessage): boolean => {
    if (!opts.credentials) return true;
    const auth = headerValue(req.headers, 'authorization');
    const m = auth ? /^Basic\s+(\S+)$/i.exec(auth) : null;
    if (!m) return false;
    const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8');
    return decoded === `${opts.credentials.username}:${opts.credentials.password}`;
  };

  const issueToken = (res: ServerResponse, scopes: string[], oauth: boolean): void => {
    const token = randomBytes(24).toString('base64url');
    const repos = parseScopes(scopes);
    tokens.set(token, { expiresAt: Date.now() + ttl * 1000, repos, catalog: repos.catalog === true });
    const issued = new Date().toISOString();
    const body = oauth
      ? { access_token: token, expires_in: ttl, issued_at: issued, scope: scopes.join(' ') }
      : { token, access_token: token, expires_in: ttl, issued_at: issued };
    sendJson(res, 200, JSON.stringify(body));
  };

  const handleToken = async (req: IncomingMessage, res: ServerResponse, url: URL, entry: LoggedRequest): Promise<void> => {
    if (req.method === 'POST') {
      // OAuth2 form (what containerd tries first when it has credentials).
      let form = '';
      for await (const chunk of req as AsyncIterable<Buffer>) {
        form += chunk.toString('utf8');
        if (form.length > 65_536) break;
      }
      const params = new URLSearchParams(form);
      const ok =
        !opts.credentials ||
        (params.get('grant_type') === 'password' &&
          params.get('username') === opts.credentials.username &&
          params.get('password') === opts.credentials.password);
      entry.authorized = ok;
      if (!ok) {
        sendJson(res, 401, JSON.stringify({ details: 'incorrect username or password' }));
        return;
      }
      issueToken(res, params.getAll('scope'), true);
      return;
    }
    if (req.method !== 'GET') {
      sendJson(res, 405, JSON.stringify({ details: 'method not allowed' }));
      return;
    }
    entry.authorized = basicOk(req);
    if (!entry.authorized) {
      sendJson(res, 401, JSON.stringify({ details: 'incorrect username or password' }), {
        'www-authenticate': `Basic realm="${service}"`,
      });
      return;
    }
    issueToken(res, url.searchParams.getAll('scope'), false);
  };

  const challenge = (res: ServerResponse, scope: string | undefined, detail: unknown): void => {
    const realm = `${frontOrigin}/token`;
    const value = `Bearer realm="${realm}",service="${service}"${scope ? `,scope="${scope}"` : ''}`;
    sendJson(res, 401, errorBody('UNAUTHORIZED', 'authentication required', detail), { 'www-authenticate': value });
  };

  /** Tag lists are answered by the front (sorted, paginated; distribution 2.8 ignores `n` and `last`). */
  const handleTags = async (req: IncomingMessage, res: ServerResponse, url: URL, repo: string): Promise<void> => {
    const up = await getTargetJson(`/v2/${repo}/tags/list`, 'application/json');
    if (up.status !== 200) {
      sendJson(res, up.status, up.body);
      return;
    }
    const all = ((JSON.parse(up.body) as { tags?: string[] | null }).tags ?? []).slice().sort();
    const last = url.searchParams.get('last');
    const nParam = url.searchParams.get('n');
    const n = nParam !== null ? Number(nParam) : opts.tagsPageSize;
    if (n !== undefined && (!Number.isInteger(n) || n < 0)) {
      sendJson(res, 400, errorBody('PAGINATION_NUMBER_INVALID', 'invalid number of results requested'));
      return;
    }
    const after = last !== null ? all.filter((t) => t > last) : all;
    const page = n !== undefined ? after.slice(0, n) : after;
    const headers: OutgoingHttpHeaders = {};
    if (n !== undefined && n > 0 && after.length > page.length) {
      const lastTag = page[page.length - 1] as string;
      headers.link = `</v2/${repo}/tags/list?last=${encodeURIComponent(lastTag)}&n=${n}>; rel="next"`;
    }
    const body = JSON.stringify({ name: repo, tags: page });
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
      res.end();
      return;
    }
    sendJson(res, 200, body, headers);
  };

  const handleReferrers = async (req: IncomingMessage, res: ServerResponse, url: URL, repo: string, subject: string): Promise<void> => {
    if (!/^sha256:[a-f0-9]{64}$/.test(subject)) {
      sendJson(res, 400, errorBody('DIGEST_INVALID', 'provided digest did not match uploaded content'));
      return;
    }
    const up = await getTargetJson(`/v2/${repo}/manifests/${subject.replace(':', '-')}`, 'application/vnd.oci.image.index.v1+json');
    type Desc = { artifactType?: string };
    let manifests: Desc[] = [];
    if (up.status === 200) manifests = (JSON.parse(up.body) as { manifests?: Desc[] }).manifests ?? [];
    else if (up.status !== 404) {
      sendJson(res, up.status, up.body);
      return;
    }
    const headers: OutgoingHttpHeaders = { 'content-type': 'application/vnd.oci.image.index.v1+json' };
    const artifactType = url.searchParams.get('artifactType');
    if (artifactType !== null) {
      manifests = manifests.filter((d) => d.artifactType === artifactType);
      headers['oci-filters-applied'] = 'artifactType';
    }
    const body = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests });
    if (req.method === 'HEAD') {
      res.writeHead(200, { ...headers, 'content-length': Buffer.byteLength(body) });
      res.end();
      return;
    }
    sendJson(res, 200, body, headers);
  };

  const handleFront = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', frontOrigin);
    const path = `${url.pathname}${url.search}`;
    const { kind, repo, reference } = classify(url.pathname);
    const entry: LoggedRequest = { method, path, kind, status: 0, authorized: false };
    if (repo !== undefined) entry.repo = repo;
    const accept = headerValue(req.headers, 'accept');
    if (accept !== undefined) entry.accept = accept;
    const range = headerValue(req.headers, 'range');
    if (range !== undefined) entry.range = range;
    requests.push(entry);
    res.once('close', () => {
      if (res.headersSent) entry.status = res.statusCode;
    });
    const applyFault = (): FaultAction | undefined => {
      const f = takeFault({ method, kind, path });
      if (f) entry.fault = f.type;
      return f;
    };

    if (kind === 'token') {
      const fault = applyFault();
      if (await preFault(req, res, fault)) return;
      await handleToken(req, res, url, entry);
      return;
    }
    if (!url.pathname.startsWith('/v2')) {
      sendJson(res, 404, errorBody('NOT_FOUND', 'not found'));
      return;
    }

    // Auth: every /v2 endpoint needs a valid token; repository endpoints need one for that repository.
    const grant = checkToken(req);
    const write = method !== 'GET' && method !== 'HEAD';
    const action = write ? 'pull,push' : 'pull';
    let ok = grant !== undefined;
    let scope: string | undefined;
    if (repo !== undefined) {
      scope = `repository:${repo}:${action}`;
      const actions = grant?.repos.get(repo);
      ok = actions !== undefined && actions.has('pull') && (!write || actions.has('push'));
    } else if (kind === 'catalog') {
      scope = 'registry:catalog:*';
    }
    entry.authorized = ok;
    if (!ok) {
      challenge(res, scope, repo !== undefined ? [{ Type: 'repository', Class: '', Name: repo, Action: 'pull' }] : null);
      return;
    }

    const fault = applyFault();
    if (await preFault(req, res, fault)) return;

    if (kind === 'tags' && repo !== undefined && (method === 'GET' || method === 'HEAD')) {
      await handleTags(req, res, url, repo);
      return;
    }
    if (kind === 'referrers' && opts.referrers && repo !== undefined && reference !== undefined) {
      await handleReferrers(req, res, url, repo, reference);
      return;
    }
    if (kind === 'blob' && method === 'GET' && opts.redirectBlobsTo === 'cdn' && cdnOrigin && repo !== undefined) {
      const sig = randomBytes(16).toString('hex');
      cdnSignatures.add(sig);
      const location = `${cdnOrigin}/cdn/${repo}/blobs/${reference ?? ''}?sig=${sig}`;
      res.writeHead(307, { location, 'content-length': 0, 'docker-distribution-api-version': 'registry/2.0' });
      res.end();
      return;
    }
    const extraHeaders: OutgoingHttpHeaders = {};
    if (kind === 'manifest' && method === 'GET') {
      remaining = Math.max(0, remaining - 1);
      extraHeaders['ratelimit-limit'] = `${rateLimit};w=21600`;
      extraHeaders['ratelimit-remaining'] = `${remaining};w=21600`;
      extraHeaders['docker-ratelimit-source'] = '127.0.0.1';
    }
    await forward(req, res, path, { extraHeaders, fault });
  };

  const handleCdn = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', cdnOrigin);
    const path = `${url.pathname}${url.search}`;
    const entry: CdnRequest = { method, path, status: 0, hadAuthorization: req.headers.authorization !== undefined };
    const range = headerValue(req.headers, 'range');
    if (range !== undefined) entry.range = range;
    cdnRequests.push(entry);
    res.once('close', () => {
      if (res.headersSent) entry.status = res.statusCode;
    });
    const m = new RegExp(`^/cdn/(${NAME})/blobs/(sha256:[a-f0-9]{64})$`).exec(url.pathname);
    const sig = url.searchParams.get('sig');
    if (!m || sig === null || !cdnSignatures.has(sig) || (method !== 'GET' && method !== 'HEAD')) {
      res.writeHead(403, { 'content-type': 'text/plain' });
      res.end('AccessDenied');
      return;
    }
    const fault = takeFault({ method, kind: 'cdn', path });
    if (fault) entry.fault = fault.type;
    if (await preFault(req, res, fault)) return;
    // A CDN speaks plain HTTP: no registry headers.
    await forward(req, res, `/v2/${m[1]}/blobs/${m[2]}`, {
      fault,
      filterHeaders: (name) => !name.startsWith('docker-'),
    });
  };

  const front = createServer((req, res) => {
    handleFront(req, res).catch((err: unknown) => failed(res, err));
  });
  const cdn = opts.redirectBlobsTo === 'cdn'
    ? createServer((req, res) => {
        handleCdn(req, res).catch((err: unknown) => failed(res, err));
      })
    : undefined;
  const sockets = new Set<Socket>();
  for (const s of [front, cdn]) {
    s?.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
  }

  const listen = (server: Server, port: number, host: string): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const close = (server: Server): Promise<void> =>
    new Promise((resolve) => {
      if (!server.listening) {
        resolve();
        return;
      }
      server.close(() => resolve());
      server.closeAllConnections();
    });

  const port = await listen(front, 0, '127.0.0.1');
  frontOrigin = `http://127.0.0.1:${port}`;
  const cdnHost = opts.cdnHost ?? '127.0.0.1';
  let cdnPort = 0;
  if (cdn) {
    cdnPort = await listen(cdn, 0, cdnHost);
    cdnOrigin = `http://${cdnHost}:${cdnPort}`;
  }

  const downAll = async (): Promise<void> => {
    await Promise.all([close(front), cdn ? close(cdn) : Promise.resolve()]);
    for (const socket of sockets) socket.destroy();
  };

  return {
    url: frontOrigin,
    host: `127.0.0.1:${port}`,
    port,
    cdnUrl: cdnOrigin,
    requests,
    cdnRequests,
    faults,
    count: (match = {}) => requests.filter((r) => matches(match, r)).length,
    reset: () => {
      requests.length = 0;
      cdnRequests.length = 0;
    },
    get rateLimitRemaining() {
      return remaining;
    },
    set rateLimitRemaining(n: number) {
      remaining = n;
    },
    revokeTokens: () => tokens.clear(),
    get isDown() {
      return isDown;
    },
    down: async () => {
      isDown = true;
      await downAll();
    },
    up: async () => {
      if (!isDown) return;
      await listen(front, port, '127.0.0.1');
      if (cdn) await listen(cdn, cdnPort, cdnHost);
      isDown = false;
    },
    stop: async () => {
      await downAll();
      agent.destroy();
    },
  };
}

/** Applies the faults that act before any target request. Returns true when the request is finished. */
async function preFault(req: IncomingMessage, res: ServerResponse, fault: FaultAction | undefined): Promise<boolean> {
  if (!fault) return false;
  switch (fault.type) {
    case 'refuse':
      req.socket.destroy();
      return true;
    case 'delay':
      await Promise.race([sleep(fault.ms), new Promise((resolve) => res.once('close', resolve))]);
      return res.destroyed;
    case 'status': {
      if (fault.body !== undefined) {
        res.writeHead(fault.status, { 'content-length': Buffer.byteLength(fault.body), ...fault.headers });
        res.end(fault.body);
      } else {
        const code = ERROR_CODES[fault.status] ?? (fault.status >= 500 ? 'UNAVAILABLE' : 'UNKNOWN');
        sendJson(res, fault.status, errorBody(code, `injected ${fault.status}`), fault.headers ?? {});
      }
      req.resume();
      return true;
    }
    default:
      return false;
  }
}

function failed(res: ServerResponse, err: unknown): void {
  // Client gone or socket destroyed on purpose: nothing to answer.
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  sendJson(res, 500, errorBody('UNKNOWN', `hub-front: ${(err as Error).message}`));
}
