import { z } from 'zod';
import { parseDuration, parseSize } from './units.js';
import { parseListen } from './listen.js';
import { parseReference } from '../reference/parse.js';

/**
 * The configuration file's schema. Every field is documented in docs/configuration.md; keep the two in step
 * (a test checks that each field here is mentioned there).
 */

const duration = z
  .union([z.string(), z.number()])
  .transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `not a duration: ${JSON.stringify(v)} (use e.g. "30s", "10m", "1h")` });
      return z.NEVER;
    }
    return ms;
  });

const size = z
  .union([z.string(), z.number()])
  .transform((v, ctx) => {
    const bytes = parseSize(v);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: `not a size: ${JSON.stringify(v)} (use e.g. "512MiB", "50GiB")` });
      return z.NEVER;
    }
    return bytes;
  });

const listen = z.string().refine((v) => parseListen(v) !== undefined, {
  message: 'not a listen address (use ":5000", "127.0.0.1:5000" or "[::1]:5000")',
});

/** A registry host as it appears in image references: lowercase DNS name or IP, optional port. */
export const REGISTRY_HOST_RE = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::\d{1,5})?$|^\[[0-9a-f:]+\](?::\d{1,5})?$/;

const secretSource = z
  .object({
    value: z.string().optional(),
    file: z.string().optional(),
    env: z.string().optional(),
  })
  .strict()
  .refine((s) => [s.value, s.file, s.env].filter((x) => x !== undefined).length === 1, {
    message: 'give exactly one of value, file or env',
  });

const upstreamCredentials = z
  .object({
    username: secretSource,
    password: secretSource,
  })
  .strict();

const timeouts = z
  .object({
    connect: duration.default(10_000),
    headers: duration.default(30_000),
    /** Longest silence between two chunks of a body. */
    body: duration.default(60_000),
  })
  .strict();

export const upstreamSchema = z
  .object({
    url: z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, '')),
    credentials: upstreamCredentials.optional(),
    /** How long a cached tag is answered without asking the upstream. */
    tagFreshness: duration.default(600_000),
    timeouts: timeouts.default({ connect: 10_000, headers: 30_000, body: 60_000 }),
    /** Most simultaneous requests to this upstream. */
    maxConnections: z.number().int().min(1).max(1024).default(64),
    /**
     * The only token endpoint (origin and path) the credentials may go to. Unset: the realm that the
     * upstream's own origin announces in its Bearer challenges.
     */
    tokenRealm: z.url({ protocol: /^https?$/ }).optional(),
    /**
     * Let blob redirects go to loopback, link-local and private addresses (and, for an `http` upstream,
     * to other plain-http hosts): for a registry whose storage lives on a private network.
     */
    allowPrivateRedirects: z.boolean().default(false),
    /** Which answers' redirects are followed: blobs only (CDNs), or every API request (registry.k8s.io needs it). */
    redirects: z.enum(['blobs', 'all']).default('blobs'),
  })
  .strict()
  .refine((u) => !(u.url.startsWith('https:') && u.tokenRealm?.startsWith('http:')), {
    message: 'tokenRealm must be https for an https upstream',
    path: ['tokenRealm'],
  });

export const tlsSchema = z
  .object({
    cert: z.string().min(1),
    key: z.string().min(1),
  })
  .strict();

/** Who may read from the mirror (docs/security.md). */
export const mirrorAuthSchema = z
  .object({
    /** htpasswd file with bcrypt entries; when set, every /v2 request needs valid credentials (unless anonymousRead). */
    htpasswd: z.string().min(1).optional(),
    /** Let requests without credentials read. Requests that do send credentials must still send valid ones. */
    anonymousRead: z.boolean().default(false),
    /** Realm sent in `WWW-Authenticate`. */
    realm: z.string().regex(/^[\x20-\x7e]{1,128}$/, 'printable ASCII, at most 128 characters').refine((r) => !/["\\]/.test(r), 'no quotes or backslashes').default('mirrorgate'),
    /** How long a successful password check is remembered (a keyed hash, never the password). */
    cacheTtl: duration.default(60_000),
    /** Most remembered successful checks; the oldest is dropped first. 0 turns the cache off. */
    cacheSize: z.number().int().min(0).max(100_000).default(1024),
    /** Most bcrypt checks running at once, each on its own worker thread (never on the event loop). */
    maxConcurrentVerifications: z.number().int().min(1).max(64).default(2),
    /** Checks waiting for a thread; beyond that 429. */
    verificationQueue: z.number().int().min(0).max(10_000).default(64),
    /** Failed logins a client address may have before 429 (the budget refills over failedLoginWindow); 0: no limit. */
    failedLoginsPerAddress: z.number().int().min(0).max(1_000_000).default(30),
    /** Failed logins a user name may have, from all addresses together, before 429; 0: no limit. */
    failedLoginsPerUser: z.number().int().min(0).max(1_000_000).default(10),
    /** How long a spent failed-login budget takes to refill completely. */
    failedLoginWindow: duration.refine((ms) => ms >= 1000, 'at least 1s').default(60_000),
    /** Most client addresses, and most user names, whose failed logins are tracked; the least recent are forgotten first. */
    failedLoginKeys: z.number().int().min(1).max(1_000_000).default(10_000),
  })
  .strict();

/** Hostile-client limits of the mirror's HTTP server (docs/security.md). */
export const mirrorLimitsSchema = z
  .object({
    /** Largest request head (request line and headers). */
    maxHeaderSize: size.default(16 * 1024),
    /** Largest request body; the mirror is read-only, so anything bigger is refused with 413 and the connection closed. */
    maxBodySize: size.default(64 * 1024),
    /** Longest query string, and most query parameters. */
    maxQueryLength: z.number().int().min(16).max(65_536).default(2048),
    maxQueryParams: z.number().int().min(1).max(256).default(16),
    /** How long a client may take to send its whole request (not the response: blob downloads are not cut); pushes see `uploadStallTimeout`. */
    requestTimeout: duration.default(60_000),
    /** A push body (a blob chunk, a manifest) that brings less than 64 KiB in this long is cut: pushes of any size, never a trickle. */
    uploadStallTimeout: duration.default(30_000),
    /** A socket with no traffic either way for this long is closed (stalled readers, idle half-open connections). */
    idleTimeout: duration.default(120_000),
    keepAliveTimeout: duration.default(65_000),
    maxRequestsPerSocket: z.number().int().min(0).default(1000),
    /** Most simultaneous client connections (0: no limit). */
    maxConnections: z.number().int().min(0).default(4096),
    /** Most simultaneous upstream fetches across all upstreams; more wait in a bounded queue, beyond it 429. */
    upstreamFetches: z.number().int().min(1).max(4096).default(128),
    upstreamQueue: z.number().int().min(0).max(100_000).default(1024),
    /** Longest wait in that queue before 429 TOOMANYREQUESTS. */
    upstreamQueueTimeout: duration.default(30_000),
  })
  .strict();

/** Cache lifecycle: when eviction starts and stops, how often garbage is collected (docs/cache.md). */
export const mirrorCacheSchema = z
  .object({
    /** Eviction starts when the cache exceeds this fraction of `storage.maxSize`... */
    highWater: z.number().gt(0).max(1).default(0.9),
    /** ...and evicts least recently used images until it is at or below this fraction. */
    lowWater: z.number().gt(0).max(1).default(0.8),
    /** How often the mirror runs a full pass (garbage, retention, size cap); 0 turns the schedule off. */
    gcInterval: duration.default(3_600_000),
    /** How often access times are written to `state/access.json` (and at shutdown). */
    accessFlushInterval: duration.default(30_000),
    /** Temp files older than this, not written by a running download, are removed by garbage collection. */
    staleTempAge: duration.default(3_600_000),
    /** Content no tag or manifest references is kept this long after its last use (a pull may be about to reference it). */
    unreferencedGrace: duration.default(600_000),
  })
  .strict()
  .refine((c) => c.lowWater < c.highWater, { message: 'lowWater must be below highWater' });

/** A regular expression, as written in the configuration (compiled where it is used). */
const regexSource = z.string().refine((r) => {
  try {
    new RegExp(r);
    return true;
  } catch {
    return false;
  }
}, 'not a regular expression');

/** A retention policy: which repositories it covers and which of their tags it keeps (docs/cache.md). */
export const retentionPolicySchema = z
  .object({
    /** Upstream key the policy covers (`*` for all). */
    upstream: z.string().min(1).default('*'),
    /** Repository path pattern: `*` within a path component, `**` across them. */
    repository: z.string().min(1).default('**'),
    /** Keep the N most recently used tags (tags matching `keepTags` do not count); older ones are removed. */
    keepLast: z.number().int().min(0).optional(),
    /** Tags matching this regular expression are never removed by retention (e.g. releases). */
    keepTags: regexSource.optional(),
    /** Tags (and untagged manifests) not used for this long are removed (hosted repositories: not pushed for this long). */
    expireAfter: duration.optional(),
    /** With `expireAfter`: only tags matching this regular expression expire (e.g. `^pr-`); others stay. */
    expireTags: regexSource.optional(),
    /** Remove every tag that is not a semantic version (`1.2.3`, `v1.2.3-rc.1`), unless `keepTags` keeps it. */
    semverOnly: z.boolean().optional(),
  })
  .strict();

/**
 * A hosted repository pattern: `*` within a path component, `**` across them. It may not begin with a
 * component that reads as a registry host (a dot, a colon, `localhost`): such names route to upstreams.
 */
const hostedPattern = z
  .string()
  .regex(/^[a-z0-9*][a-z0-9._*/-]*$/, 'repository pattern: lowercase letters, digits, . _ - / and *')
  .refine((p) => {
    const first = p.split('/')[0]!;
    return !first.includes('.') && !first.includes(':') && first !== 'localhost' && !first.startsWith('*');
  }, 'must begin with a fixed path component that is not a registry host (no dot, no colon, not localhost, not a wildcard)');

/** What a rule grants on a repository. */
export const ACCESS_ACTIONS = ['pull', 'push', 'delete'] as const;

/** One access rule: who (users and groups), on which repositories (patterns of the names clients use), may do what. */
const accessRuleSchema = z
  .object({
    /** htpasswd users; `*` is any authenticated user, `anonymous` a client without credentials (with `anonymousRead`). */
    users: z.array(z.string().min(1)).default([]),
    /** Groups from `mirror.access.groups`. */
    groups: z.array(z.string().min(1)).default([]),
    /** Repository patterns: `*` within a path component, `**` across them (e.g. `team-a/**`). */
    repositories: z.array(z.string().min(1)).min(1),
    actions: z.array(z.enum(ACCESS_ACTIONS)).min(1),
  })
  .strict()
  .refine((r) => r.users.length + r.groups.length > 0, 'a rule names at least one user or group');

/** Who may pull, push and delete hosted repositories (docs/hosted.md). Proxied repositories are read-only. */
export const accessSchema = z
  .object({
    /** Group name -> htpasswd users. */
    groups: z.record(z.string().regex(/^[A-Za-z0-9._-]+$/, 'group names: letters, digits, . _ -'), z.array(z.string().min(1))).default({}),
    /** With no rules, every authenticated user may pull, push and delete every hosted repository. */
    rules: z.array(accessRuleSchema).default([]),
  })
  .strict()
  .superRefine((a, ctx) => {
    a.rules.forEach((r, i) => {
      for (const g of r.groups) if (!Object.hasOwn(a.groups, g)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'groups'], message: `unknown group ${JSON.stringify(g)}` });
    });
  });

/** Repositories the mirror hosts itself (teams push to them), beside the proxied ones (docs/hosted.md). */
export const hostedSchema = z
  .object({
    /** Repository name patterns that are hosted, e.g. `team-a/**`, `ci/*`. Never sent to an upstream. */
    repositories: z.array(hostedPattern).default([]),
    /** An upload with no request for this long is cancelled and its data removed. */
    uploadExpiry: duration.default(3_600_000),
  })
  .strict();

/** Redis for coordination between replicas (docs/storage.md#redis): never the only copy of anything. */
export const mirrorRedisSchema = z
  .object({
    /** `redis://host:6379/0`, or `rediss://` for TLS. */
    url: z.url({ protocol: /^rediss?$/ }),
    username: z.string().min(1).optional(),
    password: secretSource.optional(),
    /** Prefix of every key, so several mirrors (or other software) can share one Redis. */
    keyPrefix: z.string().regex(/^[\x21-\x7e]{0,64}$/, 'printable ASCII without spaces, at most 64 characters').default('mirrorgate:'),
    /** How long to wait for a connection, at start and on each reconnect. */
    connectTimeout: duration.refine((ms) => ms >= 10, 'at least 10ms').default(2_000),
    /** How long a command may take before Redis counts as down (and the mirror goes on without it). */
    commandTimeout: duration.refine((ms) => ms >= 10, 'at least 10ms').default(500),
    /** How long cached metadata lives in Redis before it is read again from storage. */
    cacheTtl: duration.refine((ms) => ms >= 1000, 'at least 1s').default(3_600_000),
  })
  .strict();

/** A platform as `os/architecture[/variant]`, e.g. `linux/amd64`, `linux/arm/v7`. */
export const PLATFORM_RE = /^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/;

/** Images kept warm: fetched ahead of any pull, refreshed on a schedule, never evicted (docs/operations.md). */
export const mirrorWarmSchema = z
  .object({
    /** Image references as written in a Pod spec (`nginx:1.27`, `ghcr.io/org/app@sha256:...`); their registries must be upstreams. */
    images: z
      .array(z.string().superRefine((v, ctx) => {
        const parsed = parseReference(v);
        if (!parsed.ok) ctx.addIssue({ code: 'custom', message: `not an image reference: ${parsed.error}` });
      }))
      .max(1000)
      .default([]),
    /** How often every warm image is fetched again (a tag moved upstream is picked up; cached content costs nothing). */
    refreshInterval: duration.refine((ms) => ms >= 1000, 'at least 1s').default(3_600_000),
    /** Which platforms of a multi-platform image (an index) are fetched. */
    platforms: z.array(z.string().regex(PLATFORM_RE, 'not a platform (use e.g. "linux/amd64", "linux/arm/v7")')).min(1).default(['linux/amd64', 'linux/arm64']),
  })
  .strict();

/**
 * Images fetched ahead of the kubelet's pull when the webhook admits a pod (docs/mirror.md#prefetch). Fetches go
 * through the caching stores, so they share the upstream limits (`mirror.limits.upstreamFetches`) and every download.
 */
export const mirrorPrefetchSchema = z
  .object({
    /** Serve `POST /v2/_mirrorgate/prefetch`; off: the endpoint answers 404. */
    enabled: z.boolean().default(true),
    /** Images waiting for a fetch; an image asked for while the queue is full is dropped (counted). */
    queue: z.number().int().min(0).max(100_000).default(256),
    /** Images fetched at once. */
    concurrency: z.number().int().min(1).max(64).default(4),
    /** Which platforms of a multi-platform image are fetched. Unset: `mirror.warm.platforms`. */
    platforms: z.array(z.string().regex(PLATFORM_RE, 'not a platform (use e.g. "linux/amd64", "linux/arm/v7")')).min(1).optional(),
  })
  .strict();

/** An S3 key prefix: `/`-separated segments of safe characters; stored with a trailing `/`. */
const s3Prefix = z
  .string()
  .max(512)
  .regex(/^(?:[A-Za-z0-9_-][A-Za-z0-9._-]*(?:\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*\/?)?$/, 'a key prefix: segments of letters, digits, ".", "_", "-" (not starting with ".") separated by "/", no leading "/"')
  .transform((p) => (p === '' || p.endsWith('/') ? p : `${p}/`));

/** Content in an S3-compatible object store (Ceph RGW, MinIO, AWS S3); see docs/storage.md. */
export const s3StorageSchema = z
  .object({
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'not an S3 bucket name (3-63 lowercase letters, digits, "." and "-")'),
    /** The S3 API's URL (Ceph RGW, MinIO); unset: AWS S3 in `region`. */
    endpoint: z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, '')).optional(),
    /** Unset: AWS_REGION, else us-east-1 (what RGW and MinIO accept by default). */
    region: z.string().regex(/^[a-z0-9-]{1,64}$/, 'not a region name').optional(),
    prefix: s3Prefix.default(''),
    /** `endpoint/bucket/key` instead of `bucket.endpoint/key`: what RGW and MinIO need without wildcard DNS. */
    forcePathStyle: z.boolean().default(false),
    /** Both or neither; neither: the SDK's standard chain (AWS_* variables, shared files, web identity, instance roles). */
    accessKeyId: secretSource.optional(),
    secretAccessKey: secretSource.optional(),
    /** PEM file of CA certificates trusted for the endpoint, besides the usual ones. */
    caFile: z.string().min(1).optional(),
    /** Answer blob GETs with a 307 to a presigned URL, so bytes go from the object store to the client directly. */
    redirect: z.boolean().default(false),
    /** How long a presigned URL is valid. */
    redirectTtl: duration.default(20 * 60_000),
    /** Bytes held in memory per write before they go to the store as one part (5 MiB is S3's minimum). */
    partSize: size.default(8 * 1024 * 1024),
    /** Attempts per request, with exponential backoff (the SDK's standard retry mode: 5xx, throttling, SlowDown). */
    maxAttempts: z.number().int().min(1).max(20).default(5),
    /** Most simultaneous connections to the endpoint. */
    maxConnections: z.number().int().min(1).max(4096).default(128),
    timeouts: z
      .object({
        connect: duration.default(10_000),
        /** Longest silence on a connection while a request or response is under way. */
        idle: duration.default(60_000),
      })
      .strict()
      .default({ connect: 10_000, idle: 60_000 }),
  })
  .strict()
  .refine((s) => (s.accessKeyId === undefined) === (s.secretAccessKey === undefined), {
    message: 'give both accessKeyId and secretAccessKey, or neither',
    path: ['secretAccessKey'],
  })
  .refine((s) => s.partSize >= 5 * 1024 * 1024 && s.partSize <= 64 * 1024 * 1024, { message: 'between 5MiB and 64MiB', path: ['partSize'] })
  .refine((s) => s.redirectTtl >= 1000 && s.redirectTtl <= 7 * 86_400_000, { message: 'between 1s and 7d (the longest a signature allows)', path: ['redirectTtl'] });

/**
 * Blob GETs the mirror has checked (auth, access, the repository holds the blob, its file is stored) are
 * answered with `X-Accel-Redirect: <prefix><alg>/<hex[0:2]>/<hex>` and no body: a front server (nginx) maps
 * the prefix, an `internal` location, to `<storage.path>/blobs/` and sends the file itself.
 */
export const accelRedirectSchema = z
  .object({
    prefix: z
      .string()
      .max(256)
      .regex(/^\/(?:[A-Za-z0-9._~-]+\/)+$/, 'a URI path that starts and ends with "/" (letters, digits, ".", "_", "~", "-" between the slashes)')
      .refine((p) => !p.split('/').some((seg) => seg === '.' || seg === '..'), 'no "." or ".." segments')
      .refine((p) => !p.startsWith('/v2/'), 'outside /v2/ (the registry API)')
      .default('/_mirrorgate/blobs/'),
  })
  .strict();

export const mirrorSchema = z
  .object({
    listen: listen.default(':5000'),
    storage: z
      .object({
        path: z.string().min(1).default('./data'),
        maxSize: size.optional(),
        /** Evict when the file system has less free space than this. */
        minFreeSpace: size.optional(),
        /** Content (blobs, manifests) and metadata in object storage (`path` is then unused). */
        s3: s3StorageSchema.optional(),
        /** Stored blobs are sent by a server in front of the mirror (nginx `X-Accel-Redirect`); see docs/deploy.md. */
        accelRedirect: accelRedirectSchema.optional(),
      })
      .strict()
      // The front server reads blob files from the storage directory; object storage has its own redirect.
      .refine((s) => !(s.s3 && s.accelRedirect), { message: 'accelRedirect serves blob files from storage.path: it cannot be combined with s3 (use s3.redirect)', path: ['accelRedirect'] })
      .default({ path: './data' }),
    cache: mirrorCacheSchema.prefault({}),
    redis: mirrorRedisSchema.optional(),
    /** Tag retention policies; the first whose upstream and repository match applies. */
    retention: z.array(retentionPolicySchema).default([]),
    warm: mirrorWarmSchema.prefault({}),
    prefetch: mirrorPrefetchSchema.prefault({}),
    tls: tlsSchema.optional(),
    /** How long a client may take to send its request headers. */
    headersTimeout: duration.default(30_000),
    /** How long in-flight requests may take on SIGTERM before connections are closed anyway. */
    shutdownGrace: duration.default(30_000),
    /** Processes serving the registry, the primary handing them its connections: a number, or `auto` (one per available core). */
    workers: z.union([z.literal('auto'), z.number().int().min(1).max(256)]).default(1),
    auth: mirrorAuthSchema.prefault({}),
    limits: mirrorLimitsSchema.prefault({}),
    /** How often the htpasswd and certificate files are checked for changes (besides file-system events). */
    watchInterval: duration.default(2_000),
    hosted: hostedSchema.prefault({}),
    access: accessSchema.prefault({}),
  })
  .strict();

const k8sName = z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'not a Kubernetes object name').max(253);

export const webhookSchema = z
  .object({
    listen: listen.default(':8443'),
    /** Registry host (and port) the webhook rewrites images to. */
    mirrorHost: z
      .string()
      .regex(REGISTRY_HOST_RE, 'not a registry host')
      // A host without a dot or port reads as a Docker Hub namespace in an image reference (`mirror/nginx`).
      .refine((h) => /[.:]/.test(h) || h === 'localhost', 'must contain a dot or a port (or be "localhost") to read as a registry host')
      .refine((h) => !/^(?:index\.|registry-1\.)?docker\.io$/.test(h), 'cannot be Docker Hub') // DOCKER_HUB_ALIASES is declared below (TDZ at load)
      .default('registry.krisalee.dev.joona.fr'),
    /** Name of the dockerconfigjson Secret added to rewritten pods' imagePullSecrets. */
    pullSecretName: k8sName.default('mirrorgate-pull-secret'),
    tls: tlsSchema.optional(),
    /**
     * Registries whose images are rewritten to the mirror. Default: the keys of `upstreams` plus the
     * well-known registries (docker.io, ghcr.io, quay.io, registry.k8s.io, gcr.io, public.ecr.aws, mcr.microsoft.com).
     */
    registries: z.array(z.string().regex(REGISTRY_HOST_RE, 'not a registry host')).optional(),
    /** Image patterns left alone (`*` within a path component, `**` across them), matched against the name as written and normalised. */
    exclude: z.array(z.string().min(1)).default([]),
    /** Add `pullSecretName` to rewritten pods and keep that Secret in every opted-in namespace. */
    injectPullSecret: z.boolean().default(true),
    /** Namespace the webhook runs in (its TLS Secret and the pull secret source live there). Default: POD_NAMESPACE, the in-cluster namespace, or "mirrorgate". */
    namespace: k8sName.optional(),
    /** Service that fronts the webhook; its DNS names go into the generated serving certificate. */
    serviceName: k8sName.default('mirrorgate-webhook'),
    /** MutatingWebhookConfiguration whose caBundle the webhook keeps up to date (generated-certificate mode). */
    webhookConfigurationName: k8sName.default('mirrorgate'),
    /** Secret (in `namespace`) holding the generated CA and serving certificate, shared by replicas. */
    tlsSecretName: k8sName.default('mirrorgate-webhook-tls'),
    /** Secret (in `namespace`) copied as `pullSecretName` into every opted-in namespace. */
    pullSecretSourceName: k8sName.default('mirrorgate-pull-secret'),
    /** Lifetime of generated serving certificates, and how long before expiry they are renewed. */
    certValidity: duration.default(365 * 86_400_000),
    certRenewBefore: duration.default(30 * 86_400_000),
    /** Largest AdmissionReview body accepted. The API server sends at most 3 MiB objects. */
    maxBodySize: size.default(3 * 1024 * 1024 + 64 * 1024),
    /** Full resync period of the pull secret controller. */
    resync: duration.default(600_000),
    mirrorProbe: z
      .object({
        enabled: z.boolean().default(true),
        /** Default: `https://<mirrorHost>/v2/`. Any HTTP answer below 500 (200, 401) counts as reachable. */
        url: z.url({ protocol: /^https?$/ }).optional(),
        interval: duration.default(10_000),
        timeout: duration.default(3_000),
        /** What to do with images while the mirror is unreachable: leave them alone, or rewrite anyway. */
        whenUnreachable: z.enum(['skip', 'rewrite']).default('skip'),
      })
      .strict()
      .default({ enabled: true, interval: 10_000, timeout: 3_000, whenUnreachable: 'skip' }),
    /** Tell the mirror which images an admitted pod will pull, so it fetches them before the kubelet asks (docs/webhook.md#prefetch). */
    prefetch: z
      .object({
        enabled: z.boolean().default(false),
        /** The mirror's prefetch endpoint. Default: `/v2/_mirrorgate/prefetch` on the origin of `mirrorProbe.url`. */
        url: z.url({ protocol: /^https?$/ }).optional(),
        /** How long one notice may take; it never delays an admission, whatever this is. */
        timeout: duration.refine((ms) => ms >= 10 && ms <= 60_000, 'between 10ms and 1m').default(1_000),
        /** Notices in flight at once; an admission beyond that sends none (counted as dropped). */
        maxInFlight: z.number().int().min(1).max(1024).default(16),
        /** A mirror user that may pull the images (the mirror refuses prefetches it could not pull). */
        credentials: upstreamCredentials.optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/** Where the well-known registries live, so `--upstream ghcr.io` needs no URL. */
export const KNOWN_UPSTREAM_URLS: Record<string, string> = {
  'docker.io': 'https://registry-1.docker.io',
  'ghcr.io': 'https://ghcr.io',
  'quay.io': 'https://quay.io',
  'registry.k8s.io': 'https://registry.k8s.io',
  'gcr.io': 'https://gcr.io',
  'public.ecr.aws': 'https://public.ecr.aws',
  'mcr.microsoft.com': 'https://mcr.microsoft.com',
};

/** What a well-known registry needs besides its URL: registry.k8s.io redirects every API request to its backends. */
export const KNOWN_UPSTREAM_OPTIONS: Record<string, { redirects: 'all' }> = {
  'registry.k8s.io': { redirects: 'all' },
};

/** The upstreams configured when the file names none. */
export const DEFAULT_UPSTREAMS = ['docker.io', 'ghcr.io', 'quay.io', 'registry.k8s.io'];

export const configSchema = z
  .object({
    /** Registry host -> upstream. Docker Hub is `docker.io`. */
    upstreams: z
      .record(z.string().regex(REGISTRY_HOST_RE, 'upstream keys are registry hosts such as "ghcr.io"'), upstreamSchema)
      // Hosted repositories are stored under this key (src/mirror/hosted/hosted-names.ts).
      .refine((r) => !Object.hasOwn(r, 'hosted'), '"hosted" is reserved for the repositories the mirror hosts')
      // Docker Hub plus the registries most clusters pull from; the webhook rewrites exactly these by default.
      .default(() => Object.fromEntries(DEFAULT_UPSTREAMS.map((h) => [h, upstreamSchema.parse({ url: KNOWN_UPSTREAM_URLS[h], ...KNOWN_UPSTREAM_OPTIONS[h] })]))),
    mirror: mirrorSchema.default(mirrorSchema.parse({})),
    webhook: webhookSchema.default(webhookSchema.parse({})),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .strict()
      .default({ level: 'info' }),
  })
  .strict()
  .superRefine((c, ctx) => {
    // A warm image must come from a configured upstream: the mirror never sends a request anywhere else.
    const hosts = new Set(Object.keys(c.upstreams).map(hubCanonical));
    c.mirror.warm.images.forEach((image, i) => {
      const parsed = parseReference(image);
      if (parsed.ok && !hosts.has(hubCanonical(parsed.ref.domain))) {
        ctx.addIssue({ code: 'custom', path: ['mirror', 'warm', 'images', i], message: `${parsed.ref.domain} is not a configured upstream` });
      }
    });
  });

function hubCanonical(host: string): string {
  const h = host.toLowerCase();
  return DOCKER_HUB_ALIASES.includes(h) ? 'docker.io' : h;
}

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type UpstreamConfig = z.output<typeof upstreamSchema>;
export type MirrorConfig = z.output<typeof mirrorSchema>;
export type MirrorAuthConfig = z.output<typeof mirrorAuthSchema>;
export type MirrorLimitsConfig = z.output<typeof mirrorLimitsSchema>;
export type MirrorCacheConfig = z.output<typeof mirrorCacheSchema>;
export type MirrorRedisConfig = z.output<typeof mirrorRedisSchema>;
export type S3StorageConfig = z.output<typeof s3StorageSchema>;
export type RetentionPolicyConfig = z.output<typeof retentionPolicySchema>;
export type MirrorWarmConfig = z.output<typeof mirrorWarmSchema>;
export type MirrorPrefetchConfig = z.output<typeof mirrorPrefetchSchema>;
export type WebhookConfig = z.output<typeof webhookSchema>;
export type AccessConfig = z.output<typeof accessSchema>;
export type AccessAction = (typeof ACCESS_ACTIONS)[number];

/** Names that mean Docker Hub in image references and in `?ns=`. */
export const DOCKER_HUB_ALIASES = ['docker.io', 'index.docker.io', 'registry-1.docker.io'];
