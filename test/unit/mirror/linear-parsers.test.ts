import { describe, expect, it } from 'vitest';
import { parseAuthorization } from '../../../src/mirror/auth/authorization-header.js';
import { parseAccept, parseV2Path } from '../../../src/mirror/http/parse.js';
import { parseRangeHeader } from '../../../src/mirror/store/range.js';
import { isValidRepositoryPath, isValidTag, parseDigest } from '../../../src/reference/grammar.js';
import { parseReference } from '../../../src/reference/parse.js';

/**
 * Every parser that sees request input (header values, paths, image references) does work linear in its
 * input, or refuses long input first: a hostile 100 KB value costs milliseconds. A backtracking regular
 * expression fails this by orders of magnitude (the Range parser once spent 16 s on 100 KB), so the bound is
 * loose enough for a loaded CI machine and still far below what quadratic work costs.
 */
const SIZE = 100_000;
const BOUND_MS = 500;

/** Runs of each character class the parsers care about, each followed by something that makes them fail late. */
function hostileInputs(prefixes: readonly string[]): string[] {
  const units = [' ', '\t', '0', 'a', '-', '.', '/', ':', '_', 'a/', 'a.', 'a-', ',', 'a=', '/manifests', '/blobs/', '<'];
  const endings = ['', '!', ' x', '/', '\u0000'];
  const out: string[] = [];
  for (const p of prefixes) for (const u of units) for (const e of endings) out.push(p + u.repeat(Math.ceil(SIZE / u.length)).slice(0, SIZE) + e);
  return out;
}

/** The slowest single call of `parse` over `inputs`, in milliseconds (throws count as answers). */
function slowest(parse: (s: string) => unknown, inputs: readonly string[]): { ms: number; input: string } {
  let worst = { ms: 0, input: '' };
  for (const input of inputs) {
    const started = performance.now();
    try {
      parse(input);
    } catch {
      // a refusal is an answer too
    }
    const ms = performance.now() - started;
    if (ms > worst.ms) worst = { ms, input };
  }
  return worst;
}

function expectBounded(parse: (s: string) => unknown, prefixes: readonly string[]): void {
  const { ms, input } = slowest(parse, hostileInputs(prefixes));
  expect(ms, `${JSON.stringify(input.slice(0, 24))}... took ${ms.toFixed(1)} ms`).toBeLessThan(BOUND_MS);
}

describe('parsers of request input on hostile 100 KB values', () => {
  it('Range', () => expectBounded(parseRangeHeader, ['', 'bytes=', 'bytes=0', 'bytes=0-', 'bytes =', ' bytes']));
  it('Range, the reported case: 15,000 spaces', () => {
    const { ms } = slowest(parseRangeHeader, [`bytes=${' '.repeat(15_000)}x`, `bytes=0-${' '.repeat(15_000)}x`]);
    expect(ms).toBeLessThan(BOUND_MS);
  });
  it('request paths', () => expectBounded(parseV2Path, ['/v2/', '/v2/a', '/v2/a/manifests/', '/v2/a/blobs/']));
  it('Accept', () => expectBounded(parseAccept, ['', 'application/json', 'a/b;']));
  it('Authorization', () => expectBounded(parseAuthorization, ['', 'Basic ', 'Bearer ', 'Basic  ']));
  it('image references and the name grammar', () => {
    expectBounded(parseReference, ['', 'docker.io/', 'a', 'a:', 'a@sha256:']);
    expectBounded(isValidRepositoryPath, ['', 'a']);
    expectBounded(isValidTag, ['', 'a']);
    expectBounded(parseDigest, ['', 'sha256:', 'a']);
  });
});
