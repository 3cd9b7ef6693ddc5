import { request, type Dispatcher } from 'undici';

/** One answer of a registry, read whole: for tests of the push and management API. */
export interface RegistryAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** A header's (first) value, or undefined. */
  header(name: string): string | undefined;
  json<T = unknown>(): T;
  /** The spec error code of an error envelope (the first error's). */
  code(): string;
}

export interface RegistryCall {
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** `user:password` sent as Basic credentials. */
  creds?: string;
}

/**
 * A registry client as the conformance suite uses one: `base` is the registry's origin, `path` a path or a
 * `Location` the registry returned (relative or absolute, query kept), query parameters added on top.
 */
export function registryClient(base: string, opts: { dispatcher?: Dispatcher; creds?: string } = {}) {
  return async function call(method: string, path: string, req: RegistryCall = {}): Promise<RegistryAnswer> {
    const url = new URL(path, base);
    for (const [k, v] of Object.entries(req.query ?? {})) url.searchParams.append(k, v);
    const headers: Record<string, string> = { ...(req.headers ?? {}) };
    const creds = req.creds ?? opts.creds;
    if (creds !== undefined) headers.authorization = `Basic ${Buffer.from(creds).toString('base64')}`;
    const res = await request(url, {
      method: method as Dispatcher.HttpMethod,
      headers,
      ...(req.body !== undefined ? { body: req.body } : {}),
      ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    const header = (name: string): string | undefined => {
      const v = res.headers[name.toLowerCase()];
      return Array.isArray(v) ? v[0] : v;
    };
    return {
      status: res.statusCode,
      headers: res.headers,
      body,
      header,
      json: <T>() => JSON.parse(body.toString('utf8')) as T,
      code: () => {
        const doc = JSON.parse(body.toString('utf8')) as { errors?: { code?: unknown }[] };
        return String(doc.errors?.[0]?.code);
      },
    };
  };
}

export type Call = ReturnType<typeof registryClient>;
