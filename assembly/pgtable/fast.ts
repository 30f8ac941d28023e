// The harvest fast path: read (and clear) the dirty state of whole last-level tables of
// default-size leaves, each into 512 consecutive bitmap bits, with v128 loads and no
// per-PTE branches; a run of such tables under one level-1 table in one call. The walker
// uses it only when the result is exactly what the per-leaf loop would record: the table
// is entirely inside the range, the bitmap's page_size equals the leaf size, the 512 bits
// fit in the window, (AMD) no entry is a replicated NextLevel-7 leaf and (ARM) no entry
// is a hole.
import { FMT_AMD, FMT_INTEL, FMT_ARM, AMD_D, AMD_NL_MASK, AMD_NL_SHIFT, tableAddr, VTD_D, ARM_AP_RDONLY, ARM_DBM, isPresent, isLeaf, isDirty, makeClean } from "./format";
import { setBits64 } from "./target";
import { gatherAddRange } from "./gather";

const WORDS = memory.data(64, 16);
/** Pseudo-format: AMD PTEs in a tree known to hold no replicated level-0 leaf. */
const AMD_NOCHECK: u32 = 16;
/**
 * Pseudo-format: ARM PTEs read on the guess that every entry is valid and has DBM set
 * (what io-pgtable-arm's HD quirk makes of writable mappings). Then writable-dirty is
 * just "AP[2] clear", the low half alone; the scan checks the guess with an AND of the
 * whole entries, per 64 entries, and redoes those 64 exactly when it was wrong (a
 * read-only page, no hardware dirty). NO_CLEAR only.
 */
const ARM_ALLDBM: u32 = 17;

// @ts-ignore: decorator
@inline function cleaned(fmt: u32, v: v128): v128 {
  if (fmt == FMT_AMD || fmt == AMD_NOCHECK) return v128.andnot(v, i64x2.splat(<i64>AMD_D));
  if (fmt == FMT_INTEL) return v128.andnot(v, i64x2.splat(<i64>VTD_D));
  // Writable-dirty → writable-clean: set AP[2] wherever DBM is set (a no-op on
  // writable-clean entries; entries without DBM are untouched).
  return v128.or(v, v128.and(i64x2.shr_u(v, 44), i64x2.splat(<i64>ARM_AP_RDONLY)));
}

/**
 * One pass over the table. Clearing: the 8 dirty words into WORDS, every entry written
 * back clean in the same pass, and the format's sanity check over the whole table (AMD:
 * OR of the low halves, for NextLevel-7 replicas; ARM: AND, for holes); false means the
 * caller must undo the clearing with `unclear`. NO_CLEAR: the same checks per 64
 * entries, each word ORed into the bitmap as soon as its entries pass; false means the
 * rest of the table was not scanned. Either way the caller then walks the table per leaf.
 *
 * Each step turns 16 PTEs (8 vectors) into 16 dirty bits in PTE order with no byte
 * shuffles (V8 lowers a two-input i8x16.shuffle to two pshufb and a por, which made the
 * earlier gather compute-bound at a third of read speed in cache): i32x4 shuffles collect
 * the PTEs' low (and for ARM, high) halves, a shift moves the dirty bit to the sign bit
 * of its 32-bit lane, and two signed-saturating narrows, which keep the sign, bring the
 * 16 sign bits to one byte each for i8x16.bitmask.
 */
// @ts-ignore: decorator
@inline function scanTable(fmt: u32, table: usize, clear: bool, dst: usize, s: u64): bool {
  let orAcc = i64x2.splat(0);
  let andAcc = i64x2.splat(-1);
  // AMD D is bit 6 and Intel D bit 9 of the low half.
  const sh: i32 = fmt == FMT_INTEL ? 22 : 25;
  let p = table;
  for (let w: usize = 0; w < 8; w++) {
    let word: u64 = 0;
    if (!clear) {
      orAcc = i64x2.splat(0);
      andAcc = i64x2.splat(-1);
    }
    for (let j: u64 = 0; j < 64; j += 16) {
      const v0 = v128.load(p, 0);
      const v1 = v128.load(p, 16);
      const v2 = v128.load(p, 32);
      const v3 = v128.load(p, 48);
      const v4 = v128.load(p, 64);
      const v5 = v128.load(p, 80);
      const v6 = v128.load(p, 96);
      const v7 = v128.load(p, 112);
      const l0 = i32x4.shuffle(v0, v1, 0, 2, 4, 6);
      const l1 = i32x4.shuffle(v2, v3, 0, 2, 4, 6);
      const l2 = i32x4.shuffle(v4, v5, 0, 2, 4, 6);
      const l3 = i32x4.shuffle(v6, v7, 0, 2, 4, 6);
      let d0: v128, d1: v128, d2: v128, d3: v128;
      if (fmt == ARM_ALLDBM) {
        // AP[2] (bit 7) to the sign bit; the bitmask is inverted below.
        andAcc = v128.and(andAcc, v128.and(v128.and(v128.and(v0, v1), v128.and(v2, v3)), v128.and(v128.and(v4, v5), v128.and(v6, v7))));
        d0 = i32x4.shl(l0, 24);
        d1 = i32x4.shl(l1, 24);
        d2 = i32x4.shl(l2, 24);
        d3 = i32x4.shl(l3, 24);
      } else if (fmt == FMT_ARM) {
        // Writable-dirty: DBM (bit 51, bit 19 of the high half) and not AP[2] (bit 7).
        andAcc = v128.and(andAcc, v128.and(v128.and(l0, l1), v128.and(l2, l3)));
        d0 = v128.andnot(i32x4.shl(i32x4.shuffle(v0, v1, 1, 3, 5, 7), 12), i32x4.shl(l0, 24));
        d1 = v128.andnot(i32x4.shl(i32x4.shuffle(v2, v3, 1, 3, 5, 7), 12), i32x4.shl(l1, 24));
        d2 = v128.andnot(i32x4.shl(i32x4.shuffle(v4, v5, 1, 3, 5, 7), 12), i32x4.shl(l2, 24));
        d3 = v128.andnot(i32x4.shl(i32x4.shuffle(v6, v7, 1, 3, 5, 7), 12), i32x4.shl(l3, 24));
      } else {
        if (fmt == FMT_AMD) orAcc = v128.or(orAcc, v128.or(v128.or(l0, l1), v128.or(l2, l3)));
        d0 = i32x4.shl(l0, sh);
        d1 = i32x4.shl(l1, sh);
        d2 = i32x4.shl(l2, sh);
        d3 = i32x4.shl(l3, sh);
      }
      const m = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(d0, d1), i16x8.narrow_i32x4_s(d2, d3));
      const bits = <u32>i8x16.bitmask(m);
      word |= <u64>(fmt == ARM_ALLDBM ? bits ^ 0xffff : bits) << j;
      // No dirty entry among these 16: cleaning them would store the same bytes (Intel/AMD:
      // D already clear; ARM: every DBM entry already has AP[2]), so a mostly clean table
      // is only read, not written back.
      if (clear && bits != 0) {
        v128.store(p, cleaned(fmt, v0), 0);
        v128.store(p, cleaned(fmt, v1), 16);
        v128.store(p, cleaned(fmt, v2), 32);
        v128.store(p, cleaned(fmt, v3), 48);
        v128.store(p, cleaned(fmt, v4), 64);
        v128.store(p, cleaned(fmt, v5), 80);
        v128.store(p, cleaned(fmt, v6), 96);
        v128.store(p, cleaned(fmt, v7), 112);
      }
      p += 128;
    }
    if (clear) {
      store<u64>(WORDS + (w << 3), word);
      continue;
    }
    // NO_CLEAR checks each 64 entries and ORs their word straight into the bitmap. When
    // a later word is refused, the words already written hold only bits the per-leaf
    // walk of this table records too (dirty plain leaves before the replica or hole),
    // so the fallback's result is unchanged.
    if (fmt == FMT_AMD && v128.any_true(v128.and(orAcc, i32x4.splat(<i32>AMD_NL_MASK)))) return false;
    // (ARM NO_CLEAR always scans as ARM_ALLDBM.)
    if (fmt == ARM_ALLDBM) {
      const a = i64x2.extract_lane(andAcc, 0) & i64x2.extract_lane(andAcc, 1);
      if ((a & 1) == 0) return false;
      if ((a & ARM_DBM) == 0) word = armExactWord(p - 512);
    }
    if (dst != 0 && word != 0) orBits64(dst, s + (<u64>w << 6), word);
  }
  if (!clear) return true;
  if (fmt == FMT_AMD) return !v128.any_true(v128.and(orAcc, i32x4.splat(<i32>AMD_NL_MASK)));
  if (fmt == FMT_ARM) return (i32x4.extract_lane(andAcc, 0) & i32x4.extract_lane(andAcc, 1) & i32x4.extract_lane(andAcc, 2) & i32x4.extract_lane(andAcc, 3) & 1) != 0;
  return true;
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
@inline export function orBits64(map: usize, bit: u64, word: u64): void {
  const p = map + <usize>(bit >> 3);
  const s = bit & 7;
  if (s == 0) {
    store<u64>(p, load<u64>(p) | word);
  } else {
    store<u64>(p, load<u64>(p) | (word << s));
    store<u8>(p + 8, load<u8>(p + 8) | <u8>(word >> (64 - s)));
  }
}

/** The ARM dirty bits of the 64 entries at `q`, per entry (the exact rule). */
function armExactWord(q: usize): u64 {
  let word: u64 = 0;
  for (let k: u64 = 0; k < 64; k++) {
    if (isDirty(FMT_ARM, load<u64>(q + (<usize>k << 3)))) word |= <u64>1 << k;
  }
  return word;
}

/**
 * scanTable() specialised per (pseudo-)format and mode. Clearing scans leave their words
 * in WORDS; NO_CLEAR scans OR them into the bitmap at `dst` (bit `s`), or nowhere when
 * `dst` is 0.
 */
function computeWords(fmt: u32, table: usize, clear: bool, dst: usize, s: u64): bool {
  if (clear) {
    if (fmt == AMD_NOCHECK) return scanTable(AMD_NOCHECK, table, true, 0, 0);
    if (fmt == FMT_AMD) return scanTable(FMT_AMD, table, true, 0, 0);
    if (fmt == FMT_INTEL) return scanTable(FMT_INTEL, table, true, 0, 0);
    return scanTable(FMT_ARM, table, true, 0, 0);
  }
  if (fmt == AMD_NOCHECK) return scanTable(AMD_NOCHECK, table, false, dst, s);
  if (fmt == FMT_AMD) return scanTable(FMT_AMD, table, false, dst, s);
  if (fmt == FMT_INTEL) return scanTable(FMT_INTEL, table, false, dst, s);
  return scanTable(ARM_ALLDBM, table, false, dst, s);
}

/**
 * Harvests the last-level tables that entries [i, i1) of the level-1 table `l1` point
 * to, the first mapping `iova`, into consecutive 512-bit stretches of the bitmap from
 * `bit0`, with one gather range for the whole run. Stops at the first entry that is not
 * a table or whose table the scan refuses, leaving that table as it was.
 */
function run(fmt: u32, l1: usize, i: usize, i1: usize, iova: u64, gs: u32, clear: bool, bm: usize, bit0: u64, g: usize): usize {
  const real = fmt == AMD_NOCHECK ? FMT_AMD : fmt;
  const i0 = i;
  let first: u64 = <u64>-1;
  let last: u64 = 0;
  for (; i < i1; i++) {
    const e = load<u64>(l1 + (i << 3));
    if (!isPresent(real, e) || isLeaf(real, e, 1)) break;
    if (real == FMT_AMD && (e & AMD_NL_MASK) != (<u64>1 << AMD_NL_SHIFT)) break;
    const table = tableAddr(real, e);
    const k = <u64>(i - i0) << 9;
    if (!clear) {
      if (!computeWords(fmt, table, false, bm != 0 ? bm + <usize>((bit0 + k) >> 3) : 0, bit0 & 7)) break;
      continue;
    }
    if (!computeWords(fmt, table, true, 0, 0)) {
      unclear(real, table);
      break;
    }
    for (let w: usize = 0; w < 8; w++) {
      const x = load<u64>(WORDS + (w << 3));
      if (x == 0) continue;
      if (bm != 0) orBits64(bm, bit0 + k + (<u64>w << 6), x);
      if (first == <u64>-1) first = k + (<u64>w << 6) + ctz<u64>(x);
      last = k + (<u64>w << 6) + 63 - clz<u64>(x);
    }
  }
  if (clear && first != <u64>-1) gatherAddRange(g, iova + (first << gs), (last - first + 1) << gs);
  return i - i0;
}

/**
 * Harvests the last-level tables of default-size leaves that entries [i, i1) of the
 * level-1 table `l1` point to, the first of them mapping `iova`, each into 512
 * consecutive bitmap bits with the v128 scan. Returns how many tables it harvested; it
 * stops early, leaving the rest unchanged, at an entry that is not a table, at a table
 * holding an AMD replicated leaf or an ARM hole (those go to the per-leaf walk, which
 * reports holes as EINVAL), or where the target's window ends. The caller guarantees
 * that the whole range of [i, i1) lies inside the range being harvested and that the
 * bitmap's page_size is the leaf size.
 */
export function harvestLeafRun(fmt: u32, l1: usize, i: usize, i1: usize, iova: u64, gs: u32, clear: bool, t: usize, g: usize, replicas: bool): usize {
  let bit0: u64 = 0;
  let bm: usize = 0;
  if (t != 0) {
    const base = load<u64>(t, 8);
    if (iova < base) return 0;
    bit0 = ((iova - base) >> <u64>gs) + load<u64>(t, 16);
    const cap = load<u64>(t, 24);
    if (bit0 + 512 > cap) return 0;
    const fit = <usize>((cap - bit0) >> 9);
    if (i1 - i > fit) i1 = i + fit;
    bm = load<usize>(t);
  }
  if (fmt == FMT_AMD && !replicas) fmt = AMD_NOCHECK;
  return run(fmt, l1, i, i1, iova, gs, clear, bm, bit0, g);
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
    if (bm == 0) continue;
    const b = bit0 + (<u64>i << 9);
    if ((b & 7) == 0) {
      // Byte-aligned: the 512 bits are 64 whole bytes.
      const q = bm + <usize>(b >> 3);
      const ones = i64x2.splat(-1);
      v128.store(q, ones, 0);
      v128.store(q, ones, 16);
      v128.store(q, ones, 32);
      v128.store(q, ones, 48);
    } else {
      setBits64(bm, b, 512);
    }
  }
  return true;
}
