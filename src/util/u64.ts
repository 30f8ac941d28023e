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
  const hi = dv.getUint32(4, true);
  // Below 2^32 the low word alone, an integer: `0 * 2^32 + lo` would come out of the
  // interpreter as a boxed double, and a page count stored from it turns the field it
  // lands in (VfioDma's lockedVm, run0Npages) into a boxed-double field, one more heap
  // object per dma for the GC to copy.
  return hi === 0 ? dv.getUint32(0, true) : hi * TWO32 + dv.getUint32(0, true);
}

/** BigInt(n) for an integer 0 <= n <= Number.MAX_SAFE_INTEGER. */
export function numberToU64(n: number): bigint {
  dv.setUint32(0, n >>> 0, true);
  dv.setUint32(4, Math.floor(n / TWO32), true);
  return dv.getBigUint64(0, true);
}
