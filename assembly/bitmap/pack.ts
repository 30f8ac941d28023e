// pack: place a per-mapping dirty bitmap into the caller's bitmap at a bit offset, with
// the word semantics of Linux's update_user_bitmap() (drivers/vfio/vfio_iommu_type1.c).
//
// Contract, shared by the three variants (they differ only in access width):
//   s = dstBit % 64, w0 = dstBit / 64, nw = ceil((s + nbits) / 64) destination words.
//   S(i) = source word i, with bits at and above `nbits` treated as zero; S(-1) = 0.
//   out(j) = (S(j) << s) | (S(j-1) >> (64 - s))       for j in [0, nw)   (s = 0: out(j) = S(j))
//   dst[w0]     = s != 0 ? dst[w0] | out(0) : out(0)   (the kernel ORs the whole leftover word)
//   dst[w0 + j] = out(j)                               for j in [1, nw)   (whole words overwritten)
// Reads exactly ceil(nbits/64) source words and writes exactly nw destination words, so
// buffers may end at the very end of linear memory. Source and destination must not overlap.
// nbits == 0 writes nothing.

// @ts-ignore: decorator
@inline function tailMask(nbits: u32): u64 {
  const r = nbits & 63;
  return r == 0 ? <u64>-1 : ((<u64>1 << <u64>r) - 1);
}

/**
 * Word variant: u64 loads and stores, as merged in Linux (one copy_from_user of the
 * leftover word, an in-place bitmap_shift_left, one copy_to_user of whole words).
 */
export function packWord(dst: usize, dstBit: u32, src: usize, nbits: u32): void {
  if (nbits == 0) return;
  const s = <u64>(dstBit & 63);
  const d = dst + ((<usize>(dstBit >>> 6)) << 3);
  const srcWords = <usize>((<u64>nbits + 63) >>> 6);
  const last = srcWords - 1;
  const mask = tailMask(nbits);
  if (s == 0) {
    if (last > 0) memory.copy(d, src, last << 3);
    store<u64>(d + (last << 3), load<u64>(src + (last << 3)) & mask);
    return;
  }
  const rs = 64 - s;
  if (last == 0) {
    const cur = load<u64>(src) & mask;
    store<u64>(d, load<u64>(d) | (cur << s));
    if ((s + <u64>nbits) > 64) store<u64>(d + 8, cur >> rs);
    return;
  }
  let prev = load<u64>(src);
  store<u64>(d, load<u64>(d) | (prev << s));
  let i: usize = 1;
  for (; i < last; i++) {
    const cur = load<u64>(src + (i << 3));
    store<u64>(d + (i << 3), (cur << s) | (prev >> rs));
    prev = cur;
  }
  const cur = load<u64>(src + (last << 3)) & mask;
  store<u64>(d + (last << 3), (cur << s) | (prev >> rs));
  // The shifted source spills into one more word when its top bits cross a word boundary.
  if (<u64>((nbits - 1) & 63) + s >= 64) store<u64>(d + (srcWords << 3), cur >> rs);
}

/**
 * Byte variant: one byte at a time with a carried shift, as Kirti Wankhede's v12 patch
 * did with get_user/put_user (seed 000). Same result as packWord, byte by byte.
 */
export function packByte(dst: usize, dstBit: u32, src: usize, nbits: u32): void {
  if (nbits == 0) return;
  const s = dstBit & 63;
  const d = dst + ((<usize>(dstBit >>> 6)) << 3);
  const nw = <usize>((<u64>s + <u64>nbits + 63) >>> 6);
  const outBytes = nw << 3;
  const srcBytes = <usize>((<u64>nbits + 7) >>> 3);
  const lastMask = <u32>((nbits & 7) == 0 ? 0xff : ((1 << (nbits & 7)) - 1));
  const byteOff = <usize>(s >>> 3);
  const bs = s & 7;
  let carry: u32 = 0; // the source byte before the current one
  for (let b: usize = 0; b < outBytes; b++) {
    let cur: u32 = 0;
    if (b >= byteOff) {
      const i = b - byteOff;
      if (i < srcBytes) {
        cur = <u32>load<u8>(src + i);
        if (i == srcBytes - 1) cur &= lastMask;
      }
    }
    const out = bs == 0 ? cur : (((cur << bs) | (carry >> (8 - bs))) & 0xff);
    if (b >= byteOff) carry = cur;
    // Word 0 is ORed with what is already there (the kernel's "leftover"), only when s != 0.
    if (s != 0 && b < 8) store<u8>(d + b, load<u8>(d + b) | <u8>out);
    else store<u8>(d + b, <u8>out);
  }
}

/**
 * SIMD variant: two u64 lanes per v128. Each lane's predecessor word comes from an
 * unaligned load 8 bytes lower, so no cross-lane shuffle is needed. Word 0 and the
 * masked tail go through packWord's scalar edges.
 */
export function packSimd(dst: usize, dstBit: u32, src: usize, nbits: u32): void {
  if (nbits < 512) {
    packWord(dst, dstBit, src, nbits);
    return;
  }
  const s = <u64>(dstBit & 63);
  const d = dst + ((<usize>(dstBit >>> 6)) << 3);
  const full = <usize>(nbits >>> 6); // unmasked source words: safe for the vector loop
  if (s == 0) {
    memory.copy(d, src, full << 3);
    if (nbits & 63) store<u64>(d + (full << 3), load<u64>(src + (full << 3)) & tailMask(nbits));
    return;
  }
  const rs = 64 - s;
  const sh = <i32>s;
  const rsh = <i32>rs;
  store<u64>(d, load<u64>(d) | (load<u64>(src) << s));
  // Vector body: output words j, j+1 need S(j-1), S(j), S(j+1), all within the `full`
  // unmasked words. The previous vector is carried in a register and the lane pairs
  // (S(j-1), S(j)) are formed with one shuffle, so each source byte is loaded once.
  let j: usize = 1;
  if (full >= 5) {
    let prevV = v128.load(src); // S(0), S(1): lane 1 is the predecessor of word 2
    let head = load<u64>(src);  // S(0), predecessor of word 1
    // Words 1 and 2 first, unaligned to the pairs below: (S(0), S(1)) / (S(1), S(2)).
    const c = v128.load(src + 8);
    const p = i64x2.replace_lane(i64x2.splat(head), 1, i64x2.extract_lane(c, 0));
    v128.store(d + 8, v128.or(i64x2.shl(c, sh), i64x2.shr_u(p, rsh)));
    prevV = c; // S(1), S(2)
    j = 3;
    for (; j + 4 <= full; j += 4) {
      const q = d + (j << 3);
      const c0 = v128.load(src + (j << 3));     // S(j), S(j+1)
      const c1 = v128.load(src + (j << 3), 16); // S(j+2), S(j+3)
      const p0 = i8x16.shuffle(prevV, c0, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23);
      const p1 = i8x16.shuffle(c0, c1, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23);
      v128.store(q, v128.or(i64x2.shl(c0, sh), i64x2.shr_u(p0, rsh)));
      v128.store(q, v128.or(i64x2.shl(c1, sh), i64x2.shr_u(p1, rsh)), 16);
      prevV = c1;
    }
  }
  for (; j < full; j++) {
    store<u64>(d + (j << 3), (load<u64>(src + (j << 3)) << s) | (load<u64>(src + (j << 3) - 8) >> rs));
  }
  // Tail: the masked partial word (if any) and the spill word.
  const prev = load<u64>(src + (full << 3) - 8);
  if (nbits & 63) {
    const cur = load<u64>(src + (full << 3)) & tailMask(nbits);
    store<u64>(d + (full << 3), (cur << s) | (prev >> rs));
    if (<u64>((nbits - 1) & 63) + s >= 64) store<u64>(d + ((full + 1) << 3), cur >> rs);
  } else {
    store<u64>(d + (full << 3), prev >> rs);
  }
}
