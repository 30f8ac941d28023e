// The harvest fast path: read (and clear) the dirty state of one whole last-level table
// of default-size leaves into 512 consecutive bitmap bits, with v128 loads and no
// per-PTE branches. The walker uses it only when the result is exactly what the
// per-leaf loop would record: the table is entirely inside the range, the bitmap's
// page_size equals the leaf size, the 512 bits fit in the window, and (AMD) no entry is
// a replicated NextLevel-7 leaf.
import { FMT_AMD, FMT_INTEL, FMT_ARM, AMD_D, AMD_NL_MASK, VTD_D, ARM_AP_RDONLY, ARM_DBM, isPresent, isLeaf, isDirty, makeClean } from "./format";
import { setBits64 } from "./target";
import { gatherAddRange } from "./gather";

const WORDS = memory.data(64, 16);
/** Pseudo-format: AMD PTEs in a tree known to hold no replicated level-0 leaf. */
const AMD_NOCHECK: u32 = 16;


// @ts-ignore: decorator
@inline function cleaned(fmt: u32, v: v128): v128 {
  if (fmt == FMT_AMD || fmt == AMD_NOCHECK) return v128.andnot(v, i64x2.splat(<i64>AMD_D));
  if (fmt == FMT_INTEL) return v128.andnot(v, i64x2.splat(<i64>VTD_D));
  // Writable-dirty → writable-clean: set AP[2] wherever DBM is set (a no-op on
  // writable-clean entries; entries without DBM are untouched).
  return v128.or(v, v128.and(i64x2.shr_u(v, 44), i64x2.splat(<i64>ARM_AP_RDONLY)));
}

/**
 * AMD/Intel: 16 PTEs (8 vectors) → 16 dirty bits in PTE order: gather the byte holding
 * the dirty bit (byte 0 for AMD D = bit 6, byte 1 for Intel D = bit 9) with shuffles,
 * move the bit to the top of its byte with one 16-bit shift (bits cannot cross into a
 * byte's top bit), bitmask.
 */
// @ts-ignore: decorator
@inline function bits16(fmt: u32, v0: v128, v1: v128, v2: v128, v3: v128, v4: v128, v5: v128, v6: v128, v7: v128): u64 {
  let s01: v128, s23: v128, s45: v128, s67: v128;
  if (fmt == FMT_INTEL) {
    s01 = i8x16.shuffle(v0, v1, 1, 9, 17, 25, 1, 9, 17, 25, 1, 9, 17, 25, 1, 9, 17, 25);
    s23 = i8x16.shuffle(v2, v3, 1, 9, 17, 25, 1, 9, 17, 25, 1, 9, 17, 25, 1, 9, 17, 25);
    s45 = i8x16.shuffle(v4, v5, 1, 9, 17, 25, 1, 9, 17, 25, 1, 9, 17, 25, 1, 9, 17, 25);
    s67 = i8x16.shuffle(v6, v7, 1, 9, 17, 25, 1, 9, 17, 25, 1, 9, 17, 25, 1, 9, 17, 25);
  } else {
    s01 = i8x16.shuffle(v0, v1, 0, 8, 16, 24, 0, 8, 16, 24, 0, 8, 16, 24, 0, 8, 16, 24);
    s23 = i8x16.shuffle(v2, v3, 0, 8, 16, 24, 0, 8, 16, 24, 0, 8, 16, 24, 0, 8, 16, 24);
    s45 = i8x16.shuffle(v4, v5, 0, 8, 16, 24, 0, 8, 16, 24, 0, 8, 16, 24, 0, 8, 16, 24);
    s67 = i8x16.shuffle(v6, v7, 0, 8, 16, 24, 0, 8, 16, 24, 0, 8, 16, 24, 0, 8, 16, 24);
  }
  const t0 = i32x4.shuffle(s01, s23, 0, 4, 0, 4);
  const t1 = i32x4.shuffle(s45, s67, 0, 4, 0, 4);
  let u = i64x2.shuffle(t0, t1, 0, 2);
  u = fmt == FMT_INTEL ? i16x8.shl(u, 6) : i16x8.shl(u, 1);
  return <u64>(<u32>i8x16.bitmask(u));
}

/** Two ARM PTEs → 2 dirty bits (writable-dirty: DBM set, AP[2] clear). */
// @ts-ignore: decorator
@inline function armBits(v: v128): u64 {
  return <u64>i64x2.bitmask(v128.andnot(i64x2.shl(v, 12), i64x2.shl(v, 56)));
}

/**
 * One pass over the table: the 8 dirty words into WORDS and, when clearing, every entry
 * written back clean in the same pass; plus the format's sanity accumulator (AMD: OR of
 * all entries, for NextLevel-7 replicas; ARM: AND, for holes). Returns false when the fast
 * path does not apply (the caller then undoes the clearing with `unclear`).
 */
// @ts-ignore: decorator
@inline function scanTable(fmt: u32, table: usize, clear: bool): bool {
  let orAcc = i64x2.splat(0);
  let andAcc = i64x2.splat(-1);
  let p = table;
  for (let w: usize = 0; w < 8; w++) {
    let word: u64 = 0;
    for (let j: u64 = 0; j < 64; j += 16) {
      const a = v128.load(p, 0);
      const b = v128.load(p, 16);
      const c = v128.load(p, 32);
      const d = v128.load(p, 48);
      const e = v128.load(p, 64);
      const f = v128.load(p, 80);
      const g = v128.load(p, 96);
      const h = v128.load(p, 112);
      if (fmt == FMT_ARM) {
        // Per vector: dirty = DBM (bit 51) and not AP[2] (bit 7) into the lane's top bit;
        // every entry must be valid (bit 0): the walker fails on holes.
        andAcc = v128.and(andAcc, v128.and(v128.and(v128.and(a, b), v128.and(c, d)), v128.and(v128.and(e, f), v128.and(g, h))));
        word |= (armBits(a) | (armBits(b) << 2) | (armBits(c) << 4) | (armBits(d) << 6) | (armBits(e) << 8) | (armBits(f) << 10) | (armBits(g) << 12) | (armBits(h) << 14)) << j;
      } else {
        if (fmt == FMT_AMD) orAcc = v128.or(orAcc, v128.or(v128.or(v128.or(a, b), v128.or(c, d)), v128.or(v128.or(e, f), v128.or(g, h))));
        word |= bits16(fmt == AMD_NOCHECK ? FMT_AMD : fmt, a, b, c, d, e, f, g, h) << j;
      }
      if (clear) {
        v128.store(p, cleaned(fmt, a), 0);
        v128.store(p, cleaned(fmt, b), 16);
        v128.store(p, cleaned(fmt, c), 32);
        v128.store(p, cleaned(fmt, d), 48);
        v128.store(p, cleaned(fmt, e), 64);
        v128.store(p, cleaned(fmt, f), 80);
        v128.store(p, cleaned(fmt, g), 96);
        v128.store(p, cleaned(fmt, h), 112);
      }
      p += 128;
    }
    store<u64>(WORDS + (w << 3), word);
  }
  if (fmt == FMT_AMD) return !v128.any_true(v128.and(orAcc, i64x2.splat(<i64>AMD_NL_MASK)));
  if (fmt == FMT_ARM) return (i64x2.extract_lane(andAcc, 0) & i64x2.extract_lane(andAcc, 1) & 1) != 0;
  return true;
}

function computeWords(fmt: u32, table: usize, clear: bool, replicas: bool): bool {
  // AMD without any replicated leaf in the whole table tree scans like Intel (no check).
  if (fmt == FMT_AMD && !replicas) fmt = AMD_NOCHECK;
  if (clear) {
    if (fmt == AMD_NOCHECK) return scanTable(AMD_NOCHECK, table, true);
    if (fmt == FMT_AMD) return scanTable(FMT_AMD, table, true);
    if (fmt == FMT_INTEL) return scanTable(FMT_INTEL, table, true);
    return scanTable(FMT_ARM, table, true);
  }
  if (fmt == AMD_NOCHECK) return scanTable(AMD_NOCHECK, table, false);
  if (fmt == FMT_AMD) return scanTable(FMT_AMD, table, false);
  if (fmt == FMT_INTEL) return scanTable(FMT_INTEL, table, false);
  return scanTable(FMT_ARM, table, false);
}

/** Puts back the dirty state a clearing scan removed (the entries recorded in WORDS). */
function unclear(fmt: u32, table: usize): void {
  for (let w: usize = 0; w < 8; w++) {
    let x = load<u64>(WORDS + (w << 3));
    while (x != 0) {
      const k = <usize>ctz<u64>(x);
      x &= x - 1;
      const q = table + (((w << 6) + k) << 3);
      const pte = load<u64>(q);
      store<u64>(q, fmt == FMT_AMD ? pte | AMD_D : fmt == FMT_INTEL ? pte | VTD_D : pte & ~ARM_AP_RDONLY);
    }
  }
}

// @ts-ignore: decorator
@inline function orBits64(map: usize, bit: u64, word: u64): void {
  const p = map + <usize>(bit >> 3);
  const s = bit & 7;
  if (s == 0) {
    store<u64>(p, load<u64>(p) | word);
  } else {
    store<u64>(p, load<u64>(p) | (word << s));
    store<u8>(p + 8, load<u8>(p + 8) | <u8>(word >> (64 - s)));
  }
}

/**
 * Harvests one last-level table whose first leaf maps `iova`. Returns false (having
 * changed nothing) when the fast path does not apply; the caller then walks per leaf.
 */
export function harvestLeafTable(fmt: u32, table: usize, iova: u64, gs: u32, clear: bool, t: usize, g: usize, replicas: bool): bool {
  let bit0: u64 = 0;
  if (t != 0) {
    const base = load<u64>(t, 8);
    bit0 = ((iova - base) >> <u64>gs) + load<u64>(t, 16);
    if (iova < base || bit0 + 512 > load<u64>(t, 24)) return false;
  }
  // AMD replicas and ARM holes go to the per-leaf walk (which reports holes as EINVAL).
  if (!computeWords(fmt, table, clear, replicas)) {
    if (clear) unclear(fmt, table);
    return false;
  }
  let first: u64 = 512;
  let last: u64 = 0;
  const bm = t != 0 ? load<usize>(t) : 0;
  for (let w: usize = 0; w < 8; w++) {
    const x = load<u64>(WORDS + (w << 3));
    if (x == 0) continue;
    if (bm != 0) orBits64(bm, bit0 + (<u64>w << 6), x);
    if (!clear) continue;
    if (first == 512) first = (<u64>w << 6) + ctz<u64>(x);
    last = (<u64>w << 6) + 63 - clz<u64>(x);
  }
  if (clear && first != 512) gatherAddRange(g, iova + (first << gs), (last - first + 1) << gs);
  return true;
}

/**
 * The same for a level-1 table whose entries are all default-size block leaves (2 MiB,
 * or 1 MiB in the mock) or empty (AMD/Intel): each dirty leaf sets 512 bits. Returns
 * false, having changed nothing, when any entry is a table, an AMD replica, or (ARM) empty.
 */
export function harvestBlockTable(fmt: u32, table: usize, iova: u64, gs: u32, clear: bool, t: usize, g: usize): bool {
  let bit0: u64 = 0;
  if (t != 0) {
    const base = load<u64>(t, 8);
    bit0 = ((iova - base) >> <u64>gs) + load<u64>(t, 16);
    if (iova < base || bit0 + 512 * 512 > load<u64>(t, 24)) return false;
  }
  for (let i: usize = 0; i < 4096; i += 8) {
    const pte = load<u64>(table + i);
    if (!isPresent(fmt, pte)) {
      if (fmt == FMT_ARM) return false;
      continue;
    }
    if (!isLeaf(fmt, pte, 1) || (fmt == FMT_AMD && (pte & AMD_NL_MASK) != 0)) return false;
  }
  const bm = t != 0 ? load<usize>(t) : 0;
  const leaf = <u64>1 << <u64>(gs + 9);
  for (let i: usize = 0; i < 512; i++) {
    const q = table + (i << 3);
    const pte = load<u64>(q);
    if (!isPresent(fmt, pte) || !isDirty(fmt, pte)) continue;
    if (clear) {
      store<u64>(q, makeClean(fmt, pte));
      gatherAddRange(g, iova + (<u64>i << <u64>(gs + 9)), leaf);
    }
    if (bm != 0) setBits64(bm, bit0 + (<u64>i << 9), 512);
  }
  return true;
}
