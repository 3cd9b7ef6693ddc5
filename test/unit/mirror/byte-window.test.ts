import { describe, expect, it } from 'vitest';
import { ByteWindow } from '../../../src/mirror/proxy/byte-window.js';

const chunk = (n: number, fill: number): Buffer => Buffer.alloc(n, fill);

describe('ByteWindow', () => {
  it('keeps at most its capacity of stored bytes, dropping the oldest', () => {
    const w = new ByteWindow(1000);
    for (let i = 0; i < 50; i++) w.push(chunk(100, i), (i + 1) * 100);
    expect(w.end).toBe(5000);
    expect(w.bytes).toBeLessThanOrEqual(1000);
    expect(w.start).toBe(w.end - w.bytes);
    expect(w.read(w.start - 1, 10)).toBeUndefined();
    expect(w.read(4999, 10)).toEqual(chunk(1, 49));
  });

  it('never drops a byte that is not stored yet, and drops it once it is', () => {
    const w = new ByteWindow(1000);
    for (let i = 0; i < 30; i++) w.push(chunk(100, i), 0);
    expect(w.bytes).toBe(3000);
    expect(w.start).toBe(0);
    w.trim(1550);
    // The chunk that reaches past 1550 stays: its bytes beyond 1550 are not stored.
    expect(w.start).toBe(1500);
    w.trim(3000);
    expect(w.bytes).toBe(1000);
    expect(w.start).toBe(2000);
  });

  it('reads views of the held chunks, each to at most its chunk end', () => {
    const w = new ByteWindow(1 << 20, 10);
    w.push(Buffer.from('abcde'), 10);
    w.push(Buffer.from('fgh'), 10);
    expect(w.read(9, 1)).toBeUndefined();
    expect(w.read(10, 100)?.toString()).toBe('abcde');
    expect(w.read(12, 2)?.toString()).toBe('cd');
    expect(w.read(14, 100)?.toString()).toBe('e');
    expect(w.read(15, 100)?.toString()).toBe('fgh');
    expect(w.read(18, 1)).toBeUndefined();
    expect(w.read(12, 0)).toBeUndefined();
  });

  it('finds every byte after many drops (compaction keeps offsets right)', () => {
    const w = new ByteWindow(700);
    const all: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const c = Buffer.from(Array.from({ length: 7 + (i % 5) }, (_, j) => (i * 13 + j) % 256));
      all.push(...c);
      w.push(c, all.length);
    }
    for (let pos = w.start; pos < w.end; ) {
      const got = w.read(pos, 1 << 20)!;
      expect([...got]).toEqual(all.slice(pos, pos + got.length));
      pos += got.length;
    }
    expect(w.bytes).toBeLessThanOrEqual(700);
  });

  it('clear drops everything and keeps the end', () => {
    const w = new ByteWindow(1000);
    w.push(chunk(300, 1), 0);
    w.clear();
    expect(w.bytes).toBe(0);
    expect(w.start).toBe(300);
    expect(w.end).toBe(300);
    expect(w.read(0, 10)).toBeUndefined();
  });
});
