import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileBody } from '../../../../src/mirror/store/fs/file-body.js';
import { makeTempDir, type TempDir } from '../../../helpers/tmp.js';

let dir: TempDir | undefined;
afterEach(async () => {
  await dir?.cleanup();
  dir = undefined;
});

/** A file of `size` bytes where every 4-byte word holds its own offset, so any misplaced chunk shows. */
async function numberedFile(size: number): Promise<{ file: string; bytes: Buffer }> {
  dir = await makeTempDir('mg-file-body-');
  const bytes = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) bytes.writeUInt32BE(i, i);
  const file = path.join(dir.path, 'blob');
  await writeFile(file, bytes);
  return { file, bytes };
}

describe('FileBody', () => {
  it('streams the whole file, and a range of it, byte for byte', async () => {
    const { file, bytes } = await numberedFile(1_000_003);
    const whole: Buffer[] = [];
    for await (const c of new FileBody(await open(file), 0, bytes.length - 1, 64 * 1024)) whole.push(Buffer.from(c as Buffer));
    expect(Buffer.concat(whole).equals(bytes)).toBe(true);
    const part: Buffer[] = [];
    for await (const c of new FileBody(await open(file), 70_001, 300_000, 64 * 1024)) part.push(Buffer.from(c as Buffer));
    expect(Buffer.concat(part).equals(bytes.subarray(70_001, 300_001))).toBe(true);
  });

  it('never reuses a chunk that was not handed back: a consumer that keeps every chunk sees the right bytes', async () => {
    const { file, bytes } = await numberedFile(512 * 1024);
    const kept: Buffer[] = [];
    const body = new FileBody(await open(file), 0, bytes.length - 1, 16 * 1024);
    body.on('data', (c: Buffer) => kept.push(c));
    await new Promise((r) => body.once('close', r));
    expect(new Set(kept.map((c) => c.buffer)).size).toBe(kept.length);
    expect(Buffer.concat(kept).equals(bytes)).toBe(true);
  });

  it('reads into the buffers handed back: a consumer that recycles each chunk keeps a few buffers, and its bytes are right', async () => {
    const { file, bytes } = await numberedFile(2 * 1024 * 1024 + 5);
    const body = new FileBody(await open(file), 0, bytes.length - 1, 32 * 1024);
    const hash = createHash('sha256');
    const seen = new Set<ArrayBufferLike>();
    body.on('data', (c: Buffer) => {
      seen.add(c.buffer);
      hash.update(c);
      // Handed back later, as a socket write's callback would.
      setImmediate(() => body.recycle(c));
    });
    await new Promise((r) => body.once('close', r));
    expect(hash.digest('hex')).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(seen.size).toBeLessThanOrEqual(5);
  });

  it('ignores chunks it did not hand out', async () => {
    const { file, bytes } = await numberedFile(200_000);
    const body = new FileBody(await open(file), 0, bytes.length - 1, 64 * 1024);
    const foreign = Buffer.alloc(64 * 1024, 0xff);
    const chunks: Buffer[] = [];
    body.on('data', (c: Buffer) => {
      body.recycle(foreign);
      body.recycle(Buffer.from(c));
      chunks.push(Buffer.from(c));
    });
    await new Promise((r) => body.once('close', r));
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
  });

  it('fails when the file is shorter than the range, and closes the file when destroyed', async () => {
    const { file } = await numberedFile(10_000);
    const short = new FileBody(await open(file), 0, 19_999, 4096);
    const failed = new Promise<Error>((r) => short.once('error', r));
    short.resume();
    expect((await failed).message).toMatch(/ended at byte 10000/);

    const fh = await open(file);
    const body = new FileBody(fh, 0, 9_999, 1024);
    body.destroy();
    await new Promise((r) => body.once('close', r));
    expect(fh.fd).toBe(-1);
  });
});
