/**
 * Conversions between u64 bigints and Numbers through one 8-byte DataView. V8 (Node 20)
 * converts with `Number(bigint)` and `BigInt(number)` several times slower than it moves
 * the same bits through a DataView, and MAP_DMA converts addresses a few times per call.
 * Results are those of Number() and BigInt().
 */
const dv = new DataView(new ArrayBuffer(8));
const TWO32 = 4294967296;

/** Number(x) for 0 <= x < 2^64 (exact below 2^53, rounded to nearest above, like Number()). */
export function u64ToNumber(x: bigint): number {
  dv.setBigUint64(0, x, true);
  return dv.getUint32(4, true) * TWO32 + dv.getUint32(0, true);
}

/** BigInt(n) for an integer 0 <= n <= Number.MAX_SAFE_INTEGER. */
export function numberToU64(n: number): bigint {
  dv.setUint32(0, n >>> 0, true);
  dv.setUint32(4, Math.floor(n / TWO32), true);
  return dv.getBigUint64(0, true);
}
