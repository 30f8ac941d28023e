// update_user_bitmap() + bitmap_clear() of VFIO type1's GET_BITMAP for a batch of dmas
// whose every page is reported dirty (an IOMMU-backed group: num_non_pinned_groups), in one
// call instead of one boundary crossing and a dozen BigInt operations per dma. The words
// written are those of the shell's fused path (src/type1/dirty.ts, reportAllDirtyFused),
// which follows the kernel's set-all, bitmap_shift_left() in place, OR of the user's first
// word, copy_to_user() of whole words and bitmap_clear(0, nbits): bits above nbits that an
// earlier shift left in the dma bitmap stay, as in Linux.
//
// desc: `count` records of 5 f64 (exact integers): dma bitmap address, its allocated u64
// words, nbits, bit offset of the dma from the user bitmap's start, "low words already
// zero" (0/1). The user bitmap's words live in 64 KiB user frames: frames[i] (u32) is the
// linear address of the frame holding user address userBase + i * 64 KiB; `ubuf` is the
// user bitmap's address (8-byte aligned, so no word straddles two frames). The shell has
// checked that every word is in a frame it may write without faulting.

const ONES: u64 = <u64>-1;

// @ts-ignore: decorator
@inline function userWord(frames: usize, base: u64, addr: u64): usize {
  const off = addr - base;
  return <usize>load<u32>(frames + (<usize>(off >> 16) << 2)) + <usize>(off & 0xffff);
}

// @ts-ignore: decorator
@inline function oldWord(bm: usize, allocWords: u64, k: u64): u64 {
  return k < allocWords ? load<u64>(bm + (<usize>k << 3)) : 0;
}

/** The dma bitmap's word k after bitmap_set(0, nbits) (k >= 0). */
// @ts-ignore: decorator
@inline function setWord(bm: usize, allocWords: u64, full: u64, rem: u64, k: u64): u64 {
  if (k < full) return ONES;
  return oldWord(bm, allocWords, k) | (k == full && rem != 0 ? (<u64>1 << rem) - 1 : 0);
}

/** Word k after bitmap_shift_left(shift) (before the OR of the user's first word). */
// @ts-ignore: decorator
@inline function shiftedWord(bm: usize, allocWords: u64, full: u64, rem: u64, s: u64, k: u64): u64 {
  const a = setWord(bm, allocWords, full, rem, k);
  if (s == 0) return a;
  return (a << s) | (k == 0 ? 0 : setWord(bm, allocWords, full, rem, k - 1) >> (64 - s));
}

/** Reports and clears `count` all-dirty dmas described at `desc` into the user bitmap. */
export function type1ReportAllDirty(desc: usize, count: u32, frames: usize, userBase: f64, ubuf: f64): void {
  const base = <u64>userBase;
  const ub = <u64>ubuf;
  for (let i: u32 = 0; i < count; i++) {
    const d = desc + <usize>i * 40;
    const bm = <usize>load<f64>(d);
    const allocWords = <u64>load<f64>(d, 8);
    const nbits = <u64>load<f64>(d, 16);
    const bitOffset = <u64>load<f64>(d, 24);
    const lowClean = load<f64>(d, 32) != 0;
    const s = bitOffset & 63;
    const full = nbits >> 6;
    const rem = nbits & 63;
    const words = (nbits + s + 63) >> 6;
    const dst = ub + ((bitOffset >> 6) << 3);
    const leftover = s != 0 ? load<u64>(userWord(frames, base, dst)) : 0;
    // What stays in the dma bitmap from word `full` up (at most two words): computed from
    // the old words before any of them is rewritten.
    const keep0 = full < words ? shiftedWord(bm, allocWords, full, rem, s, full) | (full == 0 ? leftover : 0) : 0;
    const keep1 = full + 1 < words ? shiftedWord(bm, allocWords, full, rem, s, full + 1) : 0;
    // The user's words: the shifted words, the first ORed with the leftover word.
    for (let k: u64 = 0; k < words; k++) {
      let v: u64;
      if (k != 0 && k < full) v = ONES;
      else if (k == 0 && s == 0 && full > 0) v = ONES;
      else {
        v = shiftedWord(bm, allocWords, full, rem, s, k);
        if (k == 0) v |= leftover;
      }
      store<u64>(userWord(frames, base, dst + (k << 3)), v);
    }
    if (!lowClean && full > 0) memory.fill(bm, 0, <usize>((full < allocWords ? full : allocWords) << 3));
    if (full < words) store<u64>(bm + (<usize>full << 3), rem != 0 ? keep0 & ~((<u64>1 << rem) - 1) : keep0);
    if (full + 1 < words) store<u64>(bm + (<usize>(full + 1) << 3), keep1);
  }
}
