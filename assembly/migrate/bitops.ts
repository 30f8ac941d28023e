// Whole-bitmap set operations for the migration engine (src/migrate/): merging a harvested
// dirty bitmap into the migration bitmap at a bit offset (the VMM's
// cpu_physical_memory_set_dirty_lebitmap step), and retiring sent pages from the
// no-lost-page ledger. Same Linux layout as assembly/bitmap/: bit i = u64 word i/64, bit i%64.

/**
 * ORs bits [0, nbits) of `src` into `dst` at bit offset `dstBit`. Source bits at and above
 * `nbits` are ignored and no destination bit outside [dstBit, dstBit+nbits) changes, so
 * neighbouring regions that share a word are safe. Reads ceil(nbits/64) source words.
 */
export function orBits(dst: usize, dstBit: u32, src: usize, nbits: u32): void {
  if (nbits == 0) return;
  const nw = <usize>((<u64>nbits + 63) >>> 6);
  const s = <u64>(dstBit & 63);
  const base = dst + (<usize>(dstBit >>> 6) << 3);
  const tail = <u64>(nbits & 63);
  const last = nw - 1;
  if (s == 0) {
    for (let i: usize = 0; i < last; i++) {
      const p = base + (i << 3);
      store<u64>(p, load<u64>(p) | load<u64>(src + (i << 3)));
    }
  } else {
    for (let i: usize = 0; i < last; i++) {
      const v = load<u64>(src + (i << 3));
      if (v == 0) continue;
      const p = base + (i << 3);
      store<u64>(p, load<u64>(p) | (v << s));
      store<u64>(p + 8, load<u64>(p + 8) | (v >> (64 - s)));
    }
  }
  // The last source word may be partial; its high part is written only when non-zero, so
  // the word after the range is never touched by a zero carry.
  let v = load<u64>(src + (last << 3));
  if (tail != 0) v &= (<u64>1 << tail) - 1;
  if (v == 0) return;
  const p = base + (last << 3);
  store<u64>(p, load<u64>(p) | (v << s));
  if (s != 0) {
    const hi = v >> (64 - s);
    if (hi != 0) store<u64>(p + 8, load<u64>(p + 8) | hi);
  }
}

/** dst[i] &= ~src[i] for `nwords` u64 words: clears in `dst` every bit set in `src`. */
export function andNotWords(dst: usize, src: usize, nwords: u32): void {
  const n = <usize>nwords;
  let i: usize = 0;
  for (; i + 2 <= n; i += 2) {
    const p = dst + (i << 3);
    v128.store(p, v128.andnot(v128.load(p), v128.load(src + (i << 3))));
  }
  for (; i < n; i++) {
    const p = dst + (i << 3);
    store<u64>(p, load<u64>(p) & ~load<u64>(src + (i << 3)));
  }
}
