// Software dirty bitmaps shared with concurrent writers (the shared-memory build only).
//
// vfio_dma_rw() marks pages dirty in the vfio_dma's bitmap with bitmap_set(), under
// iommu->lock; once writers run in several threads without that lock, two writers that set
// different bits of one u64 word with load-OR-store lose one of the updates. Here every
// word is changed with one atomic RMW (the kernel's set_bit / atomic_long_or), and the
// harvest takes each word with an atomic exchange, so a bit set during the harvest is in
// this harvest or the next one. Layout as assembly/bitmap/: bit i = u64 word i/64, bit
// i%64; `map` must be 8-byte aligned (every WasmCore allocation is).

// @ts-ignore: decorator
@inline function orWord(map: usize, w: u32, mask: u64): void {
  atomic.or<u64>(map + (<usize>w << 3), mask);
}

/** Sets bits [start, start+n) with one atomic OR per word touched. */
export function setRangeAtomic(map: usize, start: u32, n: u32): void {
  if (n == 0) return;
  const end = <u64>start + <u64>n;
  const w0 = start >>> 6;
  const w1 = <u32>((end - 1) >>> 6);
  const lo = <u64>-1 << <u64>(start & 63);
  const hi = <u64>-1 >> <u64>(63 - <u32>((end - 1) & 63));
  if (w0 == w1) {
    orWord(map, w0, lo & hi);
    return;
  }
  orWord(map, w0, lo);
  for (let w = w0 + 1; w < w1; w++) orWord(map, w, <u64>-1);
  orWord(map, w1, hi);
}

/** Read-and-clear of `nwords` words: dst[i] = xchg(src[i], 0). */
export function takeWordsAtomic(dst: usize, src: usize, nwords: u32): void {
  for (let i: usize = 0; i < <usize>nwords; i++) store<u64>(dst + (i << 3), atomic.xchg<u64>(src + (i << 3), 0));
}
