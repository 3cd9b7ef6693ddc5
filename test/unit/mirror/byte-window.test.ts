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

  it('reads a view within one chunk and one copy across chunks, never past what it holds', () => {
    const w = new ByteWindow(1 << 20, 10);
    const abcde = Buffer.from('abcde');
    w.push(abcde, 10);
    w.push(Buffer.from('fgh'), 10);
    w.push(Buffer.from('ij'), 10);
    expect(w.read(9, 1)).toBeUndefined();
    const view = w.read(11, 3)!;
    expect(view.toString()).toBe('bcd');
    expect(view.buffer).toBe(abcde.buffer); // no copy
    expect(w.read(12, 5)?.toString()).toBe('cdefg');
    expect(w.read(10, 100)?.toString()).toBe('abcdefghij');
    expect(w.read(15, 100)?.toString()).toBe('fghij');
    expect(w.read(19, 100)?.toString()).toBe('j');
    expect(w.read(20, 1)).toBeUndefined();
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
