import { request } from 'undici';

/** What a GET delivered: status, headers, the bytes that arrived, and whether the transfer broke. */
export interface Fetched {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  broken: boolean;
  /** The spec error code of an error envelope. */
  code(): string;
}

/** GETs a URL and reads the whole answer, noting a broken transfer instead of throwing. */
export async function fetchAll(url: string, headers: Record<string, string> = {}): Promise<Fetched> {
  const res = await request(url, { headers });
  const chunks: Buffer[] = [];
  let broken = false;
  try {
    for await (const c of res.body) chunks.push(c as Buffer);
  } catch {
    broken = true;
  }
  const body = Buffer.concat(chunks);
  return { status: res.statusCode, headers: res.headers, body, broken, code: () => (JSON.parse(body.toString()) as { errors: { code: string }[] }).errors[0]!.code };
}

/** Polls until `cond` holds (e.g. a blob renamed into place after its sync), failing after `ms`. */
export async function waitFor(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
