// Bit-range primitives on Linux-layout bitmaps: bit i lives in u64 word i/64, bit i%64
// (little-endian, so also byte i/8, bit i%8). Counterparts of lib/bitmap.c's
// bitmap_set / bitmap_clear / find_next_bit / bitmap_weight, over [start, start+n).
//
// Ranges may start and end anywhere; only the words the range touches are read or
// written. Word accesses are unaligned-safe (Wasm loads have no alignment faults).

// @ts-ignore: decorator
@inline function lowMask(bits: u32): u64 {
  // bits in 1..64
  return bits >= 64 ? <u64>-1 : ((<u64>1 << bits) - 1);
}

/** Sets bits [start, start+n). Like bitmap_set(). */
export function setRange(map: usize, start: u32, n: u32): void {
  if (n == 0) return;
  const end = <u64>start + <u64>n; // exclusive, may be 2^32
  let w = <usize>(start >>> 6);
  const lastW = <usize>((end - 1) >>> 6);
  const headMask = <u64>-1 << (start & 63);
  const tailMask = lowMask(<u32>(((end - 1) & 63) + 1));
  if (w == lastW) {
    store<u64>(map + (w << 3), load<u64>(map + (w << 3)) | (headMask & tailMask));
    return;
  }
  store<u64>(map + (w << 3), load<u64>(map + (w << 3)) | headMask);
  w++;
  if (lastW > w) memory.fill(map + (w << 3), 0xff, (lastW - w) << 3);
  store<u64>(map + (lastW << 3), load<u64>(map + (lastW << 3)) | tailMask);
}

/** Clears bits [start, start+n). Like bitmap_clear(). */
export function clearRange(map: usize, start: u32, n: u32): void {
  if (n == 0) return;
  const end = <u64>start + <u64>n;
  let w = <usize>(start >>> 6);
  const lastW = <usize>((end - 1) >>> 6);
  const headMask = <u64>-1 << (start & 63);
  const tailMask = lowMask(<u32>(((end - 1) & 63) + 1));
  if (w == lastW) {
    store<u64>(map + (w << 3), load<u64>(map + (w << 3)) & ~(headMask & tailMask));
    return;
  }
  store<u64>(map + (w << 3), load<u64>(map + (w << 3)) & ~headMask);
  w++;
  if (lastW > w) memory.fill(map + (w << 3), 0, (lastW - w) << 3);
  store<u64>(map + (lastW << 3), load<u64>(map + (lastW << 3)) & ~tailMask);
}

/** Returns 1 if any bit in [start, start+n) is set, else 0. */
export function testRange(map: usize, start: u32, n: u32): u32 {
  if (n == 0) return 0;
  const end = <u64>start + <u64>n;
  let w = <usize>(start >>> 6);
  const lastW = <usize>((end - 1) >>> 6);
  const headMask = <u64>-1 << (start & 63);
  const tailMask = lowMask(<u32>(((end - 1) & 63) + 1));
  if (w == lastW) return <u32>((load<u64>(map + (w << 3)) & headMask & tailMask) != 0);
  if (load<u64>(map + (w << 3)) & headMask) return 1;
  for (w++; w < lastW; w++) if (load<u64>(map + (w << 3))) return 1;
  return <u32>((load<u64>(map + (lastW << 3)) & tailMask) != 0);
}

/** Counts the set bits in [start, start+n). Like bitmap_weight() on a sub-range. */
export function popcountRange(map: usize, start: u32, n: u32): u32 {
  if (n == 0) return 0;
  const end = <u64>start + <u64>n;
  let w = <usize>(start >>> 6);
  const lastW = <usize>((end - 1) >>> 6);
  const headMask = <u64>-1 << (start & 63);
  const tailMask = lowMask(<u32>(((end - 1) & 63) + 1));
  if (w == lastW) return <u32>popcnt<u64>(load<u64>(map + (w << 3)) & headMask & tailMask);
  let count = popcnt<u64>(load<u64>(map + (w << 3)) & headMask);
  for (w++; w < lastW; w++) count += popcnt<u64>(load<u64>(map + (w << 3)));
  count += popcnt<u64>(load<u64>(map + (lastW << 3)) & tailMask);
  return <u32>count;
}

/**
 * Returns the index of the first set bit in [from, nbits), or nbits when there is none.
 * Like find_next_bit(map, nbits, from).
 */
export function findNextSet(map: usize, nbits: u32, from: u32): u32 {
  if (from >= nbits) return nbits;
  let w = <usize>(from >>> 6);
  const lastW = <usize>((nbits - 1) >>> 6);
  let word = load<u64>(map + (w << 3)) & (<u64>-1 << (from & 63));
  while (true) {
    if (word != 0) {
      const bit = <u32>((w << 6) + <usize>ctz<u64>(word));
      return bit < nbits ? bit : nbits;
    }
    if (w == lastW) return nbits;
    w++;
    word = load<u64>(map + (w << 3));
  }
}
