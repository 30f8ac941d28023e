/**
 * Edge-biased values for generated calls: the boundaries where argument checks go wrong
 * (0, 1, page-1, page, page+1, 2^32±1, 2^63, 2^64-1, huge, unaligned) mixed with values
 * near what the world already holds (existing mappings), so ranges overlap and touch.
 */
import { Rng } from "../../src/util/random";

export const PAGE = 4096n;
export const U64 = (1n << 64n) - 1n;
export const u64 = (x: bigint): bigint => x & U64;

/** Fixed edge values of a u64 field. */
export const EDGES: readonly bigint[] = [
  0n,
  1n,
  PAGE - 1n,
  PAGE,
  PAGE + 1n,
  2n * PAGE,
  (1n << 21n) - PAGE,
  1n << 21n,
  (1n << 32n) - 1n,
  1n << 32n,
  (1n << 32n) + 1n,
  (1n << 39n) - PAGE,
  1n << 39n,
  1n << 48n,
  1n << 53n,
  1n << 63n,
  U64 - PAGE + 1n,
  U64 - 1n,
  U64,
];

/** One of `xs`. */
export function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)];
}

/** A uniformly random u64. */
export function anyU64(rng: Rng): bigint {
  return (BigInt(rng.u32()) << 32n) | BigInt(rng.u32());
}

/** Picks by weight: `[[w, f], ...]`. */
export function weighted<T>(rng: Rng, table: readonly (readonly [number, () => T])[]): T {
  let total = 0;
  for (const [w] of table) total += w;
  let x = rng.float() * total;
  for (const [w, f] of table) {
    if ((x -= w) < 0) return f();
  }
  return table[table.length - 1][1]();
}

/** A page count, small mostly. */
export function pages(rng: Rng, max = 64): bigint {
  return BigInt(weighted(rng, [
    [6, () => rng.range(1, 4)],
    [3, () => rng.range(1, max)],
    [1, () => rng.range(1, 512)],
  ]));
}

/** A size: page multiples mostly, sometimes unaligned, zero or an edge value. */
export function size(rng: Rng, maxPages = 64): bigint {
  return weighted(rng, [
    [12, () => pages(rng, maxPages) * PAGE],
    [1, () => pages(rng, maxPages) * PAGE + BigInt(rng.range(1, 4095))],
    [1, () => 0n],
    [1, () => pick(rng, EDGES)],
  ]);
}

/** An address near `base` (one of the world's): equal, a page or two off, or unaligned. */
export function near(rng: Rng, base: bigint): bigint {
  return u64(weighted(rng, [
    [6, () => base],
    [3, () => base + BigInt(rng.range(-4, 4)) * PAGE],
    [1, () => base + BigInt(rng.range(-4095, 4095))],
  ]));
}

/** A u32 field such as argsz: the right size mostly, else one off, 0, small or huge. */
export function argsz(rng: Rng, right: number): number {
  return weighted(rng, [
    [14, () => right],
    [1, () => right + pick(rng, [-1, 1, -4, 8, 16, 64])],
    [1, () => pick(rng, [0, 1, 4, 8, 0x7fffffff, 0xffffffff])],
  ]) >>> 0;
}

/** Flags: usually one of `common`, sometimes a random bit or all bits. */
export function flags(rng: Rng, common: readonly number[]): number {
  return weighted(rng, [
    [12, () => pick(rng, common)],
    [1, () => pick(rng, common) | (1 << rng.int(32))],
    [1, () => 0xffffffff],
  ]) >>> 0;
}
