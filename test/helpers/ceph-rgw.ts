import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { request } from 'undici';
import { freePort, makeTempDir } from './tmp.js';
import { reapOnExit } from './reap-children.js';

const run = promisify(execFile);

/**
 * A one-node Ceph cluster on loopback, from Debian's packages: one monitor, one OSD on bluestore over a
 * sparse file, and a RADOS Gateway answering S3 (path-style) on 127.0.0.1. No manager daemon, no cephx
 * (`auth = none`), pools of size 1. Everything lives in a temp directory; `stop()` kills the daemons
 * (SIGKILL: nothing in it is worth a clean shutdown) and removes it.
 */
export interface CephRgw {
  /** `http://127.0.0.1:PORT`. */
  readonly endpoint: string;
  /** `https://127.0.0.1:PORT` when started with `tls`. */
  readonly tlsEndpoint: string | undefined;
  /** RGW accepts any region name in signatures; this is the one to use. */
  readonly region: string;
  /** Keys of a user created at start-up. */
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** How long the start took, in ms (mon, OSD, gateway and the first user). */
  readonly startMs: number;
  /** Creates another gateway user with `radosgw-admin user create`. */
  createUser(uid: string): Promise<{ accessKeyId: string; secretAccessKey: string }>;
  /**
   * Kills the gateway (SIGKILL: connections drop mid-request), runs `whileDown` once it is gone (connections are
   * refused meanwhile), then starts it again on the same port, whatever `whileDown` did; resolves with what
   * `whileDown` resolved once the gateway answers again.
   */
  restartGateway<T>(whileDown: () => Promise<T>): Promise<T>;
  /** The gateway's log (the last 64 KiB), for failure messages. */
  logs(): Promise<string>;
  stop(): Promise<void>;
}

export interface CephRgwOptions {
  /** Serve HTTPS too, with this PEM certificate and key (besides plain HTTP). */
  tls?: { cert: string; key: string };
  /** Size of the OSD's sparse backing file (default 10 GiB; only what is written takes disk space). */
  osdBytes?: number;
  /** How long to wait for the gateway (default 60 s). */
  startTimeoutMs?: number;
}

const BINARIES = ['/usr/bin/ceph-mon', '/usr/bin/ceph-osd', '/usr/bin/radosgw', '/usr/bin/ceph', '/usr/bin/radosgw-admin', '/usr/bin/monmaptool'];


/** What made a one-node cluster start in seconds here (see the comments for why each line is there). */
function cephConf(dir: string, fsid: string, monPort: number, rgwFrontends: string, osdBytes: number): string {
  return `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${monPort}
mon initial members = a
public addr = 127.0.0.1
ms bind ipv6 = false
# No cephx: a throw-away cluster on loopback.
auth cluster required = none
auth service required = none
auth client required = none
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
log file = ${dir}/log/$name.log
pid file =
mon data = ${dir}/mon/$cluster-$id
osd data = ${dir}/osd/$cluster-$id
# One OSD: pools of size 1, few placement groups, no warnings about it.
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon data avail warn = 1
# Without it every map change waits a second: the gateway's pool creation takes 13 s instead of 1.
paxos propose interval = 0.05
# Bluestore on a sparse file (memstore grows without bound and hangs when full).
osd objectstore = bluestore
bluestore block path = ${dir}/osd/block-$id
bluestore block create = true
bluestore block size = ${osdBytes}
bluestore fsck on mkfs = false
bluestore fsck on mount = false
# The aio thread polls every 250 ms by default, and each of the many device closes at start waits for it.
bdev aio poll ms = 20
osd memory target = 1073741824
[client.rgw]
rgw frontends = ${rgwFrontends}
# Deleted data is freed, not kept for the default two hours.
rgw gc obj min wait = 0
rgw thread pool size = 64
# With auth none, the gateway otherwise loops on "get_initial_auth_request returned -13".
ms mon client mode = crc secure
`;
}

export async function startCephRgw(opts: CephRgwOptions = {}): Promise<CephRgw> {
  const missing = BINARIES.filter((b) => !existsSync(b));
  if (missing.length > 0) throw new Error(`Ceph is not installed (${missing.join(', ')} missing): run scripts/setup.sh (ceph-mon ceph-osd radosgw ceph-common)`);
  const started = Date.now();
  const tmp = await makeTempDir('mirrorgate-ceph-');
  const dir = tmp.path;
  const children: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(
      children.splice(0).map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    await tmp.cleanup();
  };
  const gatewayLog = async (): Promise<string> => {
    const text = await readFile(join(dir, 'log', 'client.rgw.log'), 'utf8').catch(() => '');
    return text.slice(-65_536);
  };
  try {
    for (const sub of ['run', 'log', 'mon', 'osd/ceph-0']) await mkdir(join(dir, sub), { recursive: true });
    const [monPort, rgwPort, tlsPort] = await Promise.all([freePort(), freePort(), opts.tls ? freePort() : Promise.resolve(0)]);
    let frontends = `beast endpoint=127.0.0.1:${rgwPort}`;
    if (opts.tls) frontends += ` ssl_endpoint=127.0.0.1:${tlsPort} ssl_certificate=${opts.tls.cert} ssl_private_key=${opts.tls.key}`;
    const fsid = randomUUID();
    const conf = join(dir, 'ceph.conf');
    await writeFile(conf, cephConf(dir, fsid, monPort, frontends, opts.osdBytes ?? 10 * 1024 ** 3));
    const osdUuid = randomUUID();
    const daemon = (cmd: string, args: string[]): ChildProcess => {
      const child = spawn(cmd, ['-c', conf, ...args, '-f'], { stdio: ['ignore', 'ignore', 'pipe'] });
      reapOnExit(child);
      children.push(child);
      return child;
    };

    // The OSD's store is made while the monitor starts: mkfs needs no monitor.
    const osdMkfs = run('/usr/bin/ceph-osd', ['-c', conf, '-i', '0', '--mkfs', '--osd-uuid', osdUuid], { timeout: 60_000 });
    await run('/usr/bin/monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, join(dir, 'monmap')]);
    await run('/usr/bin/ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', join(dir, 'monmap')]);
    const mon = daemon('/usr/bin/ceph-mon', ['-i', 'a']);
    await run('/usr/bin/ceph', ['-c', conf, '--connect-timeout', '20', 'osd', 'new', osdUuid, '0'], { timeout: 30_000 });
    await osdMkfs;
    const osd = daemon('/usr/bin/ceph-osd', ['-i', '0']);
    const deadline = started + (opts.startTimeoutMs ?? 60_000);
    // The gateway creates its pools at start: started before the OSD is up, it waits seconds for a resend.
    const osdLog = join(dir, 'log', 'osd.0.log');
    while (!(await readFile(osdLog, 'utf8').catch(() => '')).includes('state: booting -> active')) {
      for (const [name, child] of [['ceph-mon', mon], ['ceph-osd', osd]] as const) {
        if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}) during start-up`);
      }
      if (Date.now() > deadline) throw new Error('the Ceph OSD did not come up in time');
      await sleep(25);
    }
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    const startGateway = async (until: number): Promise<ChildProcess> => {
      const rgw = daemon('/usr/bin/radosgw', ['-n', 'client.rgw']);
      while (!(await answers(endpoint))) {
        if (rgw.exitCode !== null) throw new Error(`radosgw exited (${rgw.exitCode}) during start-up:\n${await gatewayLog()}`);
        if (Date.now() > until) throw new Error(`radosgw did not answer on ${endpoint} in time:\n${await gatewayLog()}`);
        await sleep(25);
      }
      return rgw;
    };
    let gateway = await startGateway(deadline);
    const restartGateway = async <T>(whileDown: () => Promise<T>): Promise<T> => {
      const old = gateway;
      if (old.exitCode === null && old.signalCode === null) {
        const exited = new Promise((resolve) => old.once('exit', resolve));
        old.kill('SIGKILL');
        await exited;
      }
      children.splice(children.indexOf(old), 1);
      try {
        return await whileDown();
      } finally {
        gateway = await startGateway(Date.now() + (opts.startTimeoutMs ?? 60_000));
      }
    };
    const createUser = async (uid: string): Promise<{ accessKeyId: string; secretAccessKey: string }> => {
      const accessKeyId = `AK${randomBytes(9).toString('hex').toUpperCase()}`;
      const secretAccessKey = randomBytes(24).toString('base64url');
      await run('/usr/bin/radosgw-admin', ['-c', conf, 'user', 'create', `--uid=${uid}`, `--display-name=${uid}`, `--access-key=${accessKeyId}`, `--secret=${secretAccessKey}`], {
        timeout: 30_000,
      });
      return { accessKeyId, secretAccessKey };
    };
    const keys = await createUser('mirrorgate-test');
    return {
      endpoint,
      tlsEndpoint: opts.tls ? `https://127.0.0.1:${tlsPort}` : undefined,
      region: 'us-east-1',
      ...keys,
      startMs: Date.now() - started,
      createUser,
      restartGateway,
      logs: gatewayLog,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await request(url, { method: 'GET', headersTimeout: 1000, bodyTimeout: 1000 });
    await res.body.dump();
    return res.statusCode === 200;
  } catch {
    return false;
  }
}
