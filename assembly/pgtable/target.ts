// Where a dirty walk records: the model of iova_bitmap_set() on one pinned window.
// Layout (48 bytes):
//   0 bitmap usize   byte address of the window's first pinned byte
//   4 pgshift u32    log2 of the bitmap's page_size
//   8 base u64       IOVA of window bit 0 (before bitOff)
//  16 bitOff u64     bits before bit 0 (the pgoff*8 of an unaligned user bitmap)
//  24 cap u64        bits available in the window (pinned bytes * 8)
//  32 spillStart u64 first IOVA recorded past the window (ULONG_MAX: none)
//  40 spillEnd u64   end (exclusive) of what spilled: iova_bitmap's set_ahead
//
// A record sets bits ((iova-base)>>pgshift)+bitOff .. ((iova+len-1-base)>>pgshift)+bitOff,
// whole leaves as the drivers report them, even past the caller's range (kernel
// behaviour); bits past the window are remembered as a spill for the next window.

export const TARGET_BYTES: usize = 48;

/** Sets bits [start, start+n) in a byte-addressed bitmap; 64-bit indices. */
export function setBits64(map: usize, start: u64, n: u64): void {
  if (n == 0) return;
  let b = start;
  const end = start + n;
  while ((b & 7) != 0 && b < end) {
    const p = map + <usize>(b >> 3);
    store<u8>(p, load<u8>(p) | <u8>(<u32>1 << <u32>(b & 7)));
    b++;
  }
  const full = (end - b) >> 3;
  if (full != 0) {
    memory.fill(map + <usize>(b >> 3), 0xff, <usize>full);
    b += full << 3;
  }
  while (b < end) {
    const p = map + <usize>(b >> 3);
    store<u8>(p, load<u8>(p) | <u8>(<u32>1 << <u32>(b & 7)));
    b++;
  }
}

/** Configures a target (the window) and clears its spill. */
export function targetSet(t: usize, bitmap: usize, pgshift: u32, base: f64, bitOff: f64, cap: f64): void {
  store<usize>(t, bitmap);
  store<u32>(t, pgshift, 4);
  store<u64>(t, <u64>base, 8);
  store<u64>(t, <u64>bitOff, 16);
  store<u64>(t, <u64>cap, 24);
  store<u64>(t, <u64>-1, 32);
  store<u64>(t, 0, 40);
}

/** First IOVA that did not fit in the window, or -1. */
export function targetSpillStart(t: usize): f64 {
  const s = load<u64>(t, 32);
  return s == <u64>-1 ? -1 : <f64>s;
}

/** End (exclusive) of the spilled IOVA range. */
export function targetSpillEnd(t: usize): f64 {
  return <f64>load<u64>(t, 40);
}

/** iommu_dirty_bitmap_record() → iova_bitmap_set(): marks [iova, iova+len) dirty. */
export function record(t: usize, iova: u64, len: u64): void {
  if (t == 0 || len == 0) return;
  const base = load<u64>(t, 8);
  if (iova + len - 1 < base) return;
  if (iova < base) {
    len -= base - iova;
    iova = base;
  }
  const sh = <u64>load<u32>(t, 4);
  const off = load<u64>(t, 16);
  const cap = load<u64>(t, 24);
  const first = ((iova - base) >> sh) + off;
  let last = ((iova + len - 1 - base) >> sh) + off;
  if (last >= cap) {
    const capIova = base + ((cap - off) << sh);
    const s = iova > capIova ? iova : capIova;
    if (s < load<u64>(t, 32)) store<u64>(t, s, 32);
    if (iova + len > load<u64>(t, 40)) store<u64>(t, iova + len, 40);
    if (cap == 0) return;
    last = cap - 1;
  }
  if (first <= last) setBits64(load<usize>(t), first, last - first + 1);
}

/** Exported record for the shell's set-ahead step (iova_bitmap_set on the next window). */
export function targetRecord(t: usize, iova: f64, len: f64): void {
  record(t, <u64>iova, <u64>len);
}
