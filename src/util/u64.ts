/**
 * Conversions between u64 bigints and Numbers through one 8-byte buffer. V8 (Node 20)
 * converts with `Number(bigint)` and `BigInt(number)` several times slower than it moves
 * the same bits through a BigUint64Array (whose element store the optimizing compiler
 * inlines; a DataView's setBigUint64 it does not), and MAP_DMA converts addresses a few
 * times per call. Results are those of Number() and BigInt().
 */
import { LITTLE_ENDIAN } from "./endian";
const b64 = new BigUint64Array(1);
const u32 = new Uint32Array(b64.buffer);
const LO = LITTLE_ENDIAN ? 0 : 1;
const HI = LITTLE_ENDIAN ? 1 : 0;
const TWO32 = 4294967296;
const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** Number(x) for 0 <= x < 2^64 (exact below 2^53, rounded to nearest above, like Number()). */
export function u64ToNumber(x: bigint): number {
  b64[0] = x;
  const hi = u32[HI];
  // Below 2^32 the low word alone, an integer: `0 * 2^32 + lo` would come out of the
  // interpreter as a boxed double, and a page count stored from it turns the field it
  // lands in (VfioDma's lockedVm, run0Npages) into a boxed-double field, one more heap
  // object per dma for the GC to copy. Above, `hi * 2^32` is exact and the sum rounds once,
  // to nearest even, as Number() does.
  return hi === 0 ? u32[LO] : hi * TWO32 + u32[LO];
}

/** Number(x) for any bigint: u64ToNumber's fast path for u64 values, Number() for the rest. */
export function bigintToNumber(x: bigint): number {
  return x >= 0n && x <= U64_MAX ? u64ToNumber(x) : Number(x);
}

/** BigInt(n) for an integer 0 <= n <= Number.MAX_SAFE_INTEGER. */
export function numberToU64(n: number): bigint {
  u32[LO] = n >>> 0;
  u32[HI] = Math.floor(n / TWO32);
  return b64[0];
}

/** The high 32 bits of x mod 2^64 (x's u64 words without a BigInt shift or mask). */
export function u64Hi(x: bigint): number {
  b64[0] = x;
  return u32[HI];
}

/** The low 32 bits of x mod 2^64. */
export function u64Lo(x: bigint): number {
  b64[0] = x;
  return u32[LO];
}

/** hi * 2^32 + lo as a bigint, for words 0 <= hi, lo < 2^32. */
export function wordsToU64(hi: number, lo: number): bigint {
  u32[HI] = hi;
  u32[LO] = lo;
  return b64[0];
}
