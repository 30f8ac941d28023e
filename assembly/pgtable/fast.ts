// The harvest fast path: read (and clear) the dirty state of one whole last-level table
// of default-size leaves into 512 consecutive bitmap bits, with v128 loads and no
// per-PTE branches. The walker uses it only when the result is exactly what the
// per-leaf loop would record: the table is entirely inside the range, the bitmap's
// page_size equals the leaf size, the 512 bits fit in the window, and (AMD) no entry is
// a replicated NextLevel-7 leaf.
import { FMT_AMD, FMT_INTEL, FMT_ARM, AMD_D, AMD_NL_MASK, VTD_D, ARM_AP_RDONLY, isPresent, isLeaf, isDirty, makeClean } from "./format";
import { setBits64 } from "./target";
import { gatherAddRange } from "./gather";

const WORDS = memory.data(64, 16);

// @ts-ignore: decorator
@inline function dirtyTopBit(fmt: u32, v: v128): v128 {
  // Lane top bit = the PTE is dirty. In a last-level table that passed the checks
  // (no AMD replicas, no ARM holes) a non-present entry is all zero, so the dirty bit
  // alone decides: AMD D (6), Intel D (9), ARM DBM (51) and not AP[2] (7).
  if (fmt == FMT_AMD) return i64x2.shl(v, 57);
  if (fmt == FMT_INTEL) return i64x2.shl(v, 54);
  return v128.andnot(i64x2.shl(v, 12), i64x2.shl(v, 56));
}

// @ts-ignore: decorator
@inline function bits2(fmt: u32, v: v128): u64 {
  return <u64>i64x2.bitmask(dirtyTopBit(fmt, v));
}

/**
 * One pass over the table: the 8 dirty words into WORDS, plus the format's sanity
 * accumulator (AMD: OR of all entries, for NextLevel-7 replicas; ARM: AND, for holes).
 * Returns false when the fast path does not apply.
 */
// @ts-ignore: decorator
@inline function scanTable(fmt: u32, table: usize): bool {
  let orAcc = i64x2.splat(0);
  let andAcc = i64x2.splat(-1);
  let p = table;
  for (let w: usize = 0; w < 8; w++) {
    let word: u64 = 0;
    for (let j: u64 = 0; j < 64; j += 8) {
      const a = v128.load(p, 0);
      const b = v128.load(p, 16);
      const c = v128.load(p, 32);
      const d = v128.load(p, 48);
      if (fmt == FMT_AMD) orAcc = v128.or(orAcc, v128.or(v128.or(a, b), v128.or(c, d)));
      else if (fmt != FMT_INTEL) andAcc = v128.and(andAcc, v128.and(v128.and(a, b), v128.and(c, d)));
      word |= (bits2(fmt, a) | (bits2(fmt, b) << 2) | (bits2(fmt, c) << 4) | (bits2(fmt, d) << 6)) << j;
      p += 64;
    }
    store<u64>(WORDS + (w << 3), word);
  }
  if (fmt == FMT_AMD) return !v128.any_true(v128.and(orAcc, i64x2.splat(<i64>AMD_NL_MASK)));
  if (fmt == FMT_INTEL) return true;
  return (i64x2.extract_lane(andAcc, 0) & i64x2.extract_lane(andAcc, 1) & 1) != 0;
}

function computeWords(fmt: u32, table: usize): bool {
  if (fmt == FMT_AMD) return scanTable(FMT_AMD, table);
  if (fmt == FMT_INTEL) return scanTable(FMT_INTEL, table);
  return scanTable(2, table);
}

function clearGroup(fmt: u32, p: usize): void {
  // 64 PTEs = 32 v128
  if (fmt == FMT_AMD) {
    const m = i64x2.splat(<i64>AMD_D);
    for (let i: usize = 0; i < 512; i += 16) v128.store(p + i, v128.andnot(v128.load(p + i), m));
  } else if (fmt == FMT_INTEL) {
    const m = i64x2.splat(<i64>VTD_D);
    for (let i: usize = 0; i < 512; i += 16) v128.store(p + i, v128.andnot(v128.load(p + i), m));
  } else {
    // Writable-dirty → writable-clean: set AP[2] wherever DBM is set (a no-op on
    // writable-clean entries, and entries without DBM are untouched).
    const ro = i64x2.splat(<i64>ARM_AP_RDONLY);
    for (let i: usize = 0; i < 512; i += 16) {
      const v = v128.load(p + i);
      v128.store(p + i, v128.or(v, v128.and(i64x2.shr_u(v, 44), ro)));
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
export function harvestLeafTable(fmt: u32, table: usize, iova: u64, gs: u32, clear: bool, t: usize, g: usize): bool {
  let bit0: u64 = 0;
  if (t != 0) {
    const base = load<u64>(t, 8);
    bit0 = ((iova - base) >> <u64>gs) + load<u64>(t, 16);
    if (iova < base || bit0 + 512 > load<u64>(t, 24)) return false;
  }
  // AMD replicas and ARM holes go to the per-leaf walk (which reports holes as EINVAL).
  if (!computeWords(fmt, table)) return false;
  let first: u64 = 512;
  let last: u64 = 0;
  const bm = t != 0 ? load<usize>(t) : 0;
  for (let w: usize = 0; w < 8; w++) {
    const x = load<u64>(WORDS + (w << 3));
    if (x == 0) continue;
    if (clear) clearGroup(fmt, table + (w << 9));
    if (bm != 0) orBits64(bm, bit0 + (<u64>w << 6), x);
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
