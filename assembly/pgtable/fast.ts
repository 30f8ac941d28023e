// The harvest fast path: read (and clear) the dirty state of one whole last-level table
// of default-size leaves into 512 consecutive bitmap bits, with v128 loads and no
// per-PTE branches. The walker uses it only when the result is exactly what the
// per-leaf loop would record: the table is entirely inside the range, the bitmap's
// page_size equals the leaf size, the 512 bits fit in the window, and (AMD) no entry is
// a replicated NextLevel-7 leaf.
import { FMT_AMD, FMT_INTEL, AMD_D, AMD_NL_MASK, VTD_D, ARM_AP_RDONLY } from "./format";
import { gatherAddRange } from "./gather";

const WORDS = memory.data(64, 16);

// @ts-ignore: decorator
@inline function dirtyTopBit(fmt: u32, v: v128): v128 {
  // Lane top bit = the PTE is present and dirty.
  if (fmt == FMT_AMD) return v128.and(i64x2.shl(v, 57), i64x2.shl(v, 63));
  if (fmt == FMT_INTEL) return v128.and(i64x2.shl(v, 54), v128.or(i64x2.shl(v, 63), i64x2.shl(v, 62)));
  return v128.andnot(v128.and(i64x2.shl(v, 63), i64x2.shl(v, 12)), i64x2.shl(v, 56));
}

// @ts-ignore: decorator
@inline function wordAt(fmt: u32, p: usize): u64 {
  let word: u64 = 0;
  for (let j: u32 = 0; j < 32; j += 4) {
    const a = <u64>i64x2.bitmask(dirtyTopBit(fmt, v128.load(p, 0)));
    const b = <u64>i64x2.bitmask(dirtyTopBit(fmt, v128.load(p, 16)));
    const c = <u64>i64x2.bitmask(dirtyTopBit(fmt, v128.load(p, 32)));
    const d = <u64>i64x2.bitmask(dirtyTopBit(fmt, v128.load(p, 48)));
    word |= (a | (b << 2) | (c << 4) | (d << 6)) << (<u64>j * 2);
    p += 64;
  }
  return word;
}

function computeWords(fmt: u32, table: usize): u64 {
  let any: u64 = 0;
  if (fmt == FMT_AMD) {
    for (let w: usize = 0; w < 8; w++) {
      const x = wordAt(FMT_AMD, table + (w << 9));
      store<u64>(WORDS + (w << 3), x);
      any |= x;
    }
  } else if (fmt == FMT_INTEL) {
    for (let w: usize = 0; w < 8; w++) {
      const x = wordAt(FMT_INTEL, table + (w << 9));
      store<u64>(WORDS + (w << 3), x);
      any |= x;
    }
  } else {
    for (let w: usize = 0; w < 8; w++) {
      const x = wordAt(2, table + (w << 9));
      store<u64>(WORDS + (w << 3), x);
      any |= x;
    }
  }
  return any;
}

function clearGroup(fmt: u32, p: usize): void {
  // 64 PTEs = 32 v128 lanes pairs
  if (fmt == FMT_AMD) {
    const m = i64x2.splat(<i64>AMD_D);
    for (let i: usize = 0; i < 512; i += 16) v128.store(p + i, v128.andnot(v128.load(p + i), m));
  } else if (fmt == FMT_INTEL) {
    const m = i64x2.splat(<i64>VTD_D);
    for (let i: usize = 0; i < 512; i += 16) v128.store(p + i, v128.andnot(v128.load(p + i), m));
  } else {
    const ro = i64x2.splat(<i64>ARM_AP_RDONLY);
    for (let i: usize = 0; i < 512; i += 16) {
      const v = v128.load(p + i);
      v128.store(p + i, v128.or(v, v128.and(i64x2.shr_s(dirtyTopBit(2, v), 63), ro)));
    }
  }
}

function hasReplicas(table: usize): bool {
  let acc = i64x2.splat(0);
  for (let i: usize = 0; i < 4096; i += 64) {
    acc = v128.or(acc, v128.or(v128.or(v128.load(table + i), v128.load(table + i, 16)), v128.or(v128.load(table + i, 32), v128.load(table + i, 48))));
  }
  return v128.any_true(v128.and(acc, i64x2.splat(<i64>AMD_NL_MASK)));
}

function allValid(table: usize): bool {
  let acc = i64x2.splat(-1);
  for (let i: usize = 0; i < 4096; i += 64) {
    acc = v128.and(acc, v128.and(v128.and(v128.load(table + i), v128.load(table + i, 16)), v128.and(v128.load(table + i, 32), v128.load(table + i, 48))));
  }
  return (i64x2.extract_lane(acc, 0) & i64x2.extract_lane(acc, 1) & 1) != 0;
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
  if (fmt == FMT_AMD && hasReplicas(table)) return false;
  if (fmt == 2 && !allValid(table)) return false; // the ARM walker fails on holes: let it
  const any = computeWords(fmt, table);
  if (any == 0) return true;
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
  if (clear) gatherAddRange(g, iova + (first << gs), (last - first + 1) << gs);
  return true;
}
