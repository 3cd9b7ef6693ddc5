import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { MirrorgateError } from '../../../common/errors.js';
import type { StorageClaim, StorageHolder, StorageOwner } from '../storage.js';
import type { S3Keys } from './s3-keys.js';
import type { S3Objects } from './s3-objects.js';

/** Holders rewrite their claim at least this often (the cache manager's heartbeat); older means gone. */
const CLAIM_HEARTBEAT_MS = 30_000;
const CLAIM_STALE_MS = 4 * CLAIM_HEARTBEAT_MS;

interface ClaimDoc extends StorageHolder {
  token: string;
}

interface LiveClaim {
  key: string;
  lastModified: number;
}

/**
 * Who uses a bucket shared by several processes: one small object per holder under `state/claims/`,
 * rewritten by its heartbeat. Object storage has no exclusive owner: mirrors share it (their claims never
 * conflict), while `mirrorgate gc` conflicts with any live holder and a mirror with a live gc. A claim is
 * written first and the others read after, so two that start together both see each other and both refuse,
 * never both go on. Ages are measured against the store's clock (its Last-Modified stamps), not ours.
 */
export class S3Claims {
  constructor(
    private readonly objects: S3Objects,
    private readonly keys: S3Keys,
    /** Our idea of the store's time now (the client's clock, corrected for the skew the SDK saw). */
    private readonly storeNow: () => number,
  ) {}

  async claim(owner: StorageOwner, opts: { force?: boolean } = {}): Promise<StorageClaim> {
    const token = randomBytes(8).toString('hex');
    const key = this.keys.claimKey(`${owner}-${token}`);
    const doc: ClaimDoc = { owner, pid: process.pid, hostname: hostname(), since: Date.now(), token };
    const body = Buffer.from(JSON.stringify(doc));
    const put = (): Promise<string> => this.objects.put(key, body);
    await put();
    const claims = await this.live();
    const mine = claims.find((c) => c.key === key);
    // Our own claim was just written: its stamp is the store's now.
    const now = mine?.lastModified ?? this.storeNow();
    const others = claims.filter((c) => c.key !== key && now - c.lastModified < CLAIM_STALE_MS);
    const conflicting = others.filter((c) => owner === 'gc' || this.ownerOf(c.key) === 'gc');
    if (conflicting.length > 0 && !opts.force) {
      await this.objects.delete(key);
      const holder = await this.read(conflicting[0]!.key);
      const who = holder?.owner === 'gc' || this.ownerOf(conflicting[0]!.key) === 'gc' ? 'mirrorgate gc' : 'a running mirror';
      const where = holder ? ` (pid ${holder.pid} on ${holder.hostname}, since ${new Date(holder.since).toISOString()})` : '';
      throw new MirrorgateError('STORAGE_LOCKED', `storage ${this.keys.bucket}/${this.keys.location.prefix} is in use by ${who}${where}`);
    }
    return {
      heartbeat: () => put().then(
        () => undefined,
        () => undefined, // the next beat tries again; a claim is only stale after several missed ones
      ),
      release: () => this.objects.delete(key).catch(() => undefined),
    };
  }

  /** A live holder: `mirrorgate gc` first, else the longest-running mirror. */
  async holder(): Promise<StorageHolder | undefined> {
    const now = this.storeNow();
    const live = (await this.live()).filter((c) => now - c.lastModified < CLAIM_STALE_MS);
    live.sort((a, b) => Number(this.ownerOf(b.key) === 'gc') - Number(this.ownerOf(a.key) === 'gc'));
    for (const c of live) {
      const doc = await this.read(c.key);
      if (doc) return { owner: doc.owner, pid: doc.pid, hostname: doc.hostname, since: doc.since };
    }
    return undefined;
  }

  private async live(): Promise<LiveClaim[]> {
    const out: LiveClaim[] = [];
    for await (const o of this.objects.list(this.keys.claimsPrefix())) {
      if (o.Key?.endsWith('.json')) out.push({ key: o.Key, lastModified: o.LastModified?.getTime() ?? 0 });
    }
    return out.sort((a, b) => a.lastModified - b.lastModified);
  }

  private ownerOf(key: string): StorageOwner | undefined {
    const name = key.slice(this.keys.claimsPrefix().length);
    return name.startsWith('gc-') ? 'gc' : name.startsWith('mirror-') ? 'mirror' : undefined;
  }

  private async read(key: string): Promise<ClaimDoc | undefined> {
    const got = await this.objects.get(key).catch(() => undefined);
    if (!got) return undefined;
    const chunks: Buffer[] = [];
    for await (const c of got.body as AsyncIterable<Buffer>) {
      chunks.push(c);
      if (chunks.reduce((n, b) => n + b.length, 0) > 4096) return undefined;
    }
    try {
      const doc = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Partial<ClaimDoc>;
      if ((doc.owner !== 'mirror' && doc.owner !== 'gc') || typeof doc.pid !== 'number' || typeof doc.hostname !== 'string' || typeof doc.since !== 'number') return undefined;
      return doc as ClaimDoc;
    } catch {
      return undefined;
    }
  }
}
