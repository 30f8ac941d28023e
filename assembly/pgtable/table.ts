// One I/O page table (an io_pgtable instance): header, walker and the operations the
// IOMMU driver and the device perform on it. Addresses inside are u64 bytes; the exported
// entry points take IOVAs and physical addresses as f64 holding exact integers below 2^53
// (see assembly/index.ts).
//
// Header layout (HEADER_BYTES):
//   0 format u32 | 4 levels u32 | 8 granule shift u32 | 12 flags u32 | 16 root usize
//  20 max levels u32 | 24 pgsize bitmap u64 | 32 table pages u32
//  36 replicated (NextLevel-7) leaves at level 0, AMD: while 0 the harvest skips that check
//  40 out phys u64 | 48 out leaf iova u64 | 56 out leaf size u64 | 64 out pte usize
//  68 out "writes need no PTE update" u32 | 72 out level u32 | 76 out writable u32
import {
  FMT_AMD, FMT_INTEL, FMT_ARM, PROT_READ, PROT_WRITE, PT_TRACK, AMD_PR, AMD_NL_MASK, AMD_NL_SHIFT,
  isPresent, isLeaf, tableAddr, leafAddr, makeTable, makeLeaf, isReadable, isWritable,
  isDirty, makeClean, makeDirty, makeWriteProtected, hwOnWrite, hwOnRead, writeNeedsNoUpdate,
} from "./format";
import { tablePageAlloc, tablePageFree } from "./pages";
import { gatherAddRange, gatherSetPgsize, gatherDeferFree } from "./gather";
import { record } from "./target";
import { harvestLeafRun, harvestBlockTable } from "./fast";
import { allocFault, FAULT_PT_HEADER } from "../runtime/fault";

const HEADER_BYTES: usize = 80;
const EINVAL: i32 = 22;
const ENOMEM: i32 = 12;
const EEXIST: i32 = 17;
const ENOENT: i32 = 2;
const ERANGE: i32 = 34;

/** read_and_clear_dirty flag: report without clearing (IOMMU_DIRTY_NO_CLEAR). */
const DIRTY_NO_CLEAR: u32 = 1;

// @ts-ignore: decorator
@inline function fmtOf(pt: usize): u32 { return load<u32>(pt); }
// @ts-ignore: decorator
@inline function levelsOf(pt: usize): u32 { return load<u32>(pt, 4); }
// @ts-ignore: decorator
@inline function gsOf(pt: usize): u32 { return load<u32>(pt, 8); }
// @ts-ignore: decorator
@inline function flagsOf(pt: usize): u32 { return load<u32>(pt, 12); }
// @ts-ignore: decorator
@inline function rootOf(pt: usize): usize { return load<usize>(pt, 16); }

/** Bits of IOVA the current top level covers. */
// @ts-ignore: decorator
@inline function coverageBits(pt: usize): u32 {
  const b = gsOf(pt) + 9 * levelsOf(pt);
  return b > 64 ? 64 : b;
}

// Results of fetch(): the leaf (first replica), its size and replica count, its level;
// when absent, gSize is the span of the empty entry the walk stopped at.
let gSize: u64 = 0;
let gCount: u32 = 1;
let gLevel: u32 = 0;

/** fetch_pte(): the leaf mapping `iova`, or 0. */
export function fetch(pt: usize, iova: u64): usize {
  const fmt = fmtOf(pt);
  const gs = gsOf(pt);
  const cov = coverageBits(pt);
  if (cov < 64 && (iova >> <u64>cov) != 0) {
    gSize = <u64>1 << <u64>cov;
    gLevel = levelsOf(pt);
    return 0;
  }
  let level = levelsOf(pt) - 1;
  let table = rootOf(pt);
  while (true) {
    const shift = <u64>(gs + 9 * level);
    const idx = <usize>((iova >> shift) & 511);
    const p = table + (idx << 3);
    const pte = load<u64>(p);
    gLevel = level;
    gSize = <u64>1 << shift;
    gCount = 1;
    if (!isPresent(fmt, pte)) return 0;
    if (isLeaf(fmt, pte, level)) {
      if (fmt == FMT_AMD && ((pte & AMD_NL_MASK) >> AMD_NL_SHIFT) == 7) {
        // PTE_PAGE_SIZE(): 1 << (1 + ffz(pte | 0xfff)); first_pte_l7 rounds down to replica 0.
        const size = <u64>1 << (1 + ctz<u64>(~(pte | 0xfff)));
        const count = <u32>(size >> shift);
        gSize = size;
        gCount = count;
        return table + ((idx & ~(<usize>count - 1)) << 3);
      }
      return p;
    }
    if (level == 0) return 0;
    if (fmt == FMT_AMD && <u32>((pte & AMD_NL_MASK) >> AMD_NL_SHIFT) != level) return 0;
    table = tableAddr(fmt, pte);
    level--;
  }
}

/** After fetch(): the leaf's size, replica count and level (per instance: each thread has its own). */
export function fetchedSize(): u64 { return gSize; }
export function fetchedCount(): u32 { return gCount; }
export function fetchedLevel(): u32 { return gLevel; }

/** The table at `stop` level holding `iova`'s entry, or 0 when the path has a leaf or hole above. */
export function tableAt(pt: usize, iova: u64, stop: u32): usize {
  const fmt = fmtOf(pt);
  const gs = gsOf(pt);
  const cov = coverageBits(pt);
  if (cov < 64 && (iova >> <u64>cov) != 0) return 0;
  let level = levelsOf(pt) - 1;
  if (stop > level) return 0;
  let table = rootOf(pt);
  while (level > stop) {
    const pte = load<u64>(table + (<usize>((iova >> <u64>(gs + 9 * level)) & 511) << 3));
    if (!isPresent(fmt, pte) || isLeaf(fmt, pte, level)) return 0;
    if (fmt == FMT_AMD && <u32>((pte & AMD_NL_MASK) >> AMD_NL_SHIFT) != level) return 0;
    table = tableAddr(fmt, pte);
    level--;
  }
  return table;
}

/**
 * Creates a page table. `levels` is the starting depth (AMD grows it on demand up to
 * `maxLevels`, like increase_address_space()); `gs` the granule shift (12, or 11 for the
 * selftest mock). Returns the header address, or 0 on ENOMEM.
 */
export function ptCreate(fmt: u32, levels: u32, maxLevels: u32, gs: u32, flags: u32, pgsizeLo: u32, pgsizeHi: u32): usize {
  if (allocFault(FAULT_PT_HEADER)) return 0;
  const pt = heap.alloc(HEADER_BYTES);
  memory.fill(pt, 0, HEADER_BYTES);
  const root = tablePageAlloc();
  if (root == 0) {
    heap.free(pt);
    return 0;
  }
  store<u32>(pt, fmt);
  store<u32>(pt, levels, 4);
  store<u32>(pt, gs, 8);
  store<u32>(pt, flags, 12);
  store<usize>(pt, root, 16);
  store<u32>(pt, maxLevels, 20);
  store<u64>(pt, (<u64>pgsizeHi << 32) | <u64>pgsizeLo, 24);
  store<u32>(pt, 1, 32);
  return pt;
}

function freeTree(fmt: u32, table: usize, level: u32): u32 {
  let n: u32 = 1;
  if (level > 0) {
    for (let i: usize = 0; i < 512; i++) {
      const pte = load<u64>(table + (i << 3));
      if (isPresent(fmt, pte) && !isLeaf(fmt, pte, level)) n += freeTree(fmt, tableAddr(fmt, pte), level - 1);
    }
  }
  tablePageFree(table);
  return n;
}

/** Frees every table and the header. No device may still cache a PTE pointer into it. */
export function ptDestroy(pt: usize): void {
  freeTree(fmtOf(pt), rootOf(pt), levelsOf(pt) - 1);
  heap.free(pt);
}

/** Sets or clears table flags (PT_TRACK: AMD DTE.HAD / Intel SSADE). */
export function ptSetFlags(pt: usize, flags: u32): void {
  store<u32>(pt, flags, 12);
}

/** Table pages this table owns (root included). */
export function ptTables(pt: usize): u32 {
  return load<u32>(pt, 32);
}

/** Current depth. */
export function ptLevels(pt: usize): u32 {
  return levelsOf(pt);
}

function growOneLevel(pt: usize): bool {
  const nr = tablePageAlloc();
  if (nr == 0) return false;
  const levels = levelsOf(pt);
  store<u64>(nr, makeTable(fmtOf(pt), rootOf(pt), levels));
  store<usize>(pt, nr, 16);
  store<u32>(pt, levels + 1, 4);
  store<u32>(pt, load<u32>(pt, 32) + 1, 32);
  return true;
}

/** Writes one leaf of `size` bytes; allocates tables on the way. Returns 0 or -errno. */
function mapOne(pt: usize, iova: u64, pa: u64, size: u64, prot: u32): i32 {
  const fmt = fmtOf(pt);
  const gs = gsOf(pt);
  const n = <u32>ctz<u64>(size) - gs;
  const lvl = n / 9;
  const count: u32 = 1 << (n % 9);
  if (count > 1 && (fmt != FMT_AMD || gs != 12)) return -EINVAL;
  if (fmt != FMT_AMD && lvl > 2) return -EINVAL;
  // The top level holds tables only (AMD grows a level instead, Intel/ARM refuse).
  while (lvl + 1 > levelsOf(pt) - (fmt == FMT_AMD ? 1 : 0) || (coverageBits(pt) < 64 && ((iova + size - 1) >> <u64>coverageBits(pt)) != 0)) {
    if (fmt != FMT_AMD || levelsOf(pt) >= load<u32>(pt, 20)) return -ERANGE;
    if (!growOneLevel(pt)) return -ENOMEM;
  }
  let level = levelsOf(pt) - 1;
  let table = rootOf(pt);
  while (level > lvl) {
    const p = table + (<usize>((iova >> <u64>(gs + 9 * level)) & 511) << 3);
    const pte = load<u64>(p);
    if (!isPresent(fmt, pte)) {
      const child = tablePageAlloc();
      if (child == 0) return -ENOMEM;
      store<u64>(p, makeTable(fmt, child, level));
      store<u32>(pt, load<u32>(pt, 32) + 1, 32);
      table = child;
    } else {
      if (isLeaf(fmt, pte, level)) return -EEXIST;
      table = tableAddr(fmt, pte);
    }
    level--;
  }
  const idx = <usize>((iova >> <u64>(gs + 9 * lvl)) & 511) & ~(<usize>count - 1);
  const p = table + (idx << 3);
  for (let i: usize = 0; i < <usize>count; i++) if (load<u64>(p + (i << 3)) != 0) return -EEXIST;
  // The 2 KiB-granule mock keeps output addresses in granule units in bits 51:12
  // (bit 11 of a byte address would land in AMD's NextLevel field).
  const paField = gs == 11 ? (pa >> 11) << 12 : pa;
  const leaf = makeLeaf(fmt, paField, size, lvl, count, prot, flagsOf(pt));
  for (let i: usize = 0; i < <usize>count; i++) store<u64>(p + (i << 3), leaf);
  if (count > 1 && lvl == 0) store<u32>(pt, load<u32>(pt, 36) + 1, 36);
  gLeafPtr = p;
  return 0;
}

/** Where mapOne() wrote its (first) leaf. */
let gLeafPtr: usize = 0;

// Below this, a leaf's output address and its attribute bits never overlap in any format
// (ARM's address field ends at bit 47), so pa | bits == pa + bits and consecutive granule
// leaves differ by exactly the granule.
const LINEAR_PA_LIMIT: u64 = <u64>1 << 48;

/**
 * The sizes of `bitmap` a run whose IOVA and output address differ by `delta` can ever
 * use: iova and pa advance together, so both are aligned to a size only if `delta` is
 * (AMD's 8 KiB..1 MiB replicated sizes never fit a run whose pa is 4 KiB off its iova).
 */
// @ts-ignore: decorator
@inline function usableSizes(bitmap: u64, delta: u64): u64 {
  const m = ctz<u64>(delta);
  return m >= 63 ? bitmap : bitmap & ((<u64>2 << m) - 1);
}

/** Whether the pgsize bitmap has a size above `granule` and below the span of its table. */
// @ts-ignore: decorator
@inline function hasSizeBelowTable(bitmap: u64, granule: u64): bool {
  return (bitmap & ((granule << 9) - 1) & ~((granule << 1) - 1)) != 0;
}

/**
 * Writes up to `n` granule leaves at `q`, `leaf` then `leaf` + 4 KiB each, stopping at the
 * first occupied entry; returns how many it wrote. Two entries per v128 step while both
 * are empty (the common case: a fresh table), one at a time around an occupied one.
 */
function fillGranuleLeaves(q: usize, n: usize, leaf: u64): usize {
  let i: usize = 0;
  if ((q & 15) != 0 && n != 0) {
    if (load<u64>(q) != 0) return 0;
    store<u64>(q, leaf);
    leaf += 4096;
    i = 1;
  }
  let v = i64x2.replace_lane(i64x2.splat(leaf), 1, leaf + 4096);
  const two = i64x2.splat(8192);
  while (i + 2 <= n) {
    const p = q + (i << 3);
    if (v128.any_true(v128.load(p))) break;
    v128.store(p, v);
    v = i64x2.add(v, two);
    i += 2;
  }
  leaf = i64x2.extract_lane(v, 0);
  while (i < n) {
    const p = q + (i << 3);
    if (load<u64>(p) != 0) break;
    store<u64>(p, leaf);
    leaf += 4096;
    i++;
  }
  return i;
}

/** iommu_pgsize(): the largest supported size that fits `size` and the alignment of iova|pa. */
function pickPgsize(bitmap: u64, addrMerge: u64, size: u64): u64 {
  const hi = 63 - clz<u64>(size);
  let sizes = bitmap & (hi >= 63 ? <u64>-1 : ((<u64>1 << (hi + 1)) - 1));
  if (addrMerge != 0) {
    const lo = ctz<u64>(addrMerge);
    sizes &= lo >= 63 ? <u64>-1 : ((<u64>1 << (lo + 1)) - 1);
  }
  if (sizes == 0) return 0;
  return <u64>1 << (63 - clz<u64>(sizes));
}

function isTableEmpty(table: usize): bool {
  let acc = i64x2.splat(0);
  for (let i: usize = 0; i < 4096; i += 64) {
    acc = v128.or(acc, v128.or(v128.or(v128.load(table + i), v128.load(table + i, 16)), v128.or(v128.load(table + i, 32), v128.load(table + i, 48))));
  }
  return !v128.any_true(acc);
}

/**
 * Frees the now-empty tables under [start, end) (deferred through the gather). `cleared`:
 * the caller has just cleared every leaf in [start, end) (unmapRange), so a last-level
 * table whose whole span lies inside it is empty without reading its 512 entries.
 */
function prune(pt: usize, table: usize, level: u32, start: u64, end: u64, g: usize, cleared: bool): void {
  if (level == 0) return;
  const fmt = fmtOf(pt);
  const shift = <u64>(gsOf(pt) + 9 * level);
  const span = <u64>1 << shift;
  let a = start;
  while (a < end) {
    const idx = <usize>((a >> shift) & 511);
    const p = table + (idx << 3);
    const pte = load<u64>(p);
    const entryStart = a & ~(span - 1);
    const entryEnd = entryStart + span;
    if (isPresent(fmt, pte) && !isLeaf(fmt, pte, level)) {
      const child = tableAddr(fmt, pte);
      prune(pt, child, level - 1, a, end < entryEnd ? end : entryEnd, g, cleared);
      const inside = cleared && level == 1 && a == entryStart && entryEnd != 0 && entryEnd <= end;
      if (inside || isTableEmpty(child)) {
        store<u64>(p, 0);
        gatherDeferFree(g, child);
        store<u32>(pt, load<u32>(pt, 32) - 1, 32);
      }
    }
    if (entryEnd == 0) break; // wrapped at 2^64
    a = entryEnd;
    if (idx == 511) break; // left this table's span
  }
}

function pruneRange(pt: usize, start: u64, end: u64, g: usize, cleared: bool): void {
  if (end <= start) return;
  const cov = coverageBits(pt);
  if (cov < 64 && (start >> <u64>cov) != 0) return;
  if (cov < 64 && end > (<u64>1 << <u64>cov)) end = <u64>1 << <u64>cov;
  prune(pt, rootOf(pt), levelsOf(pt) - 1, start, end, g, cleared);
}

/**
 * Clears the run of present plain leaves (AMD: not NextLevel-7 replicas) among the `n`
 * last-level entries from `q`, stopping at the first entry that is not one; returns how
 * many it cleared (the entries the per-leaf loop of unmapRange() would clear).
 */
function clearPlainLeaves(fmt: u32, q: usize, n: usize): usize {
  let i: usize = 0;
  // Present and plain: Intel R|W != 0, ARM valid; AMD PR set with NextLevel 0.
  const mask: u64 = fmt == FMT_AMD ? AMD_PR | AMD_NL_MASK : fmt == FMT_INTEL ? 3 : 1;
  const want: u64 = fmt == FMT_AMD ? AMD_PR : 0;
  if (fmt == FMT_AMD) {
    const m = i64x2.splat(mask);
    const w = i64x2.splat(want);
    while (i + 2 <= n && i64x2.all_true(i64x2.eq(v128.and(v128.load(q + (i << 3)), m), w))) {
      v128.store(q + (i << 3), i64x2.splat(0));
      i += 2;
    }
  } else {
    const m = i64x2.splat(mask);
    while (i + 2 <= n && i64x2.all_true(v128.and(v128.load(q + (i << 3)), m))) {
      v128.store(q + (i << 3), i64x2.splat(0));
      i += 2;
    }
  }
  while (i < n) {
    const pte = load<u64>(q + (i << 3));
    if (fmt == FMT_AMD ? (pte & mask) != want : (pte & mask) == 0) break;
    store<u64>(q + (i << 3), 0);
    i++;
  }
  return i;
}

/**
 * iommu_unmap() on this table (Gen A AMD semantics for every format): from `iova`, clear
 * whole leaves (a leaf larger than asked is cleared whole) until `size` bytes are
 * unmapped or a hole is reached; returns the bytes unmapped. With a target this is the
 * RFC's unmap_read_dirty: the dirty state of each cleared leaf is recorded first.
 */
function unmapRange(pt: usize, iova: u64, size: u64, g: usize, t: usize): u64 {
  const fmt = fmtOf(pt);
  const start = iova;
  let unmapped: u64 = 0;
  while (unmapped < size) {
    const p = fetch(pt, iova);
    if (p == 0) break;
    const s = gSize;
    const c = <usize>gCount;
    if (t != 0) {
      let d = false;
      for (let i: usize = 0; i < c; i++) d = d || isDirty(fmt, load<u64>(p + (i << 3)));
      if (d) record(t, iova, s);
    }
    for (let i: usize = 0; i < c; i++) store<u64>(p + (i << 3), 0);
    if (c > 1 && gLevel == 0) store<u32>(pt, load<u32>(pt, 36) - 1, 36);
    const base = iova & ~(s - 1);
    iova = base + s;
    unmapped += s;
    if (gLevel == 0 && c == 1 && iova != 0) {
      // The entries after a plain last-level leaf in its table are the next leaves of
      // the same size: clear them without walking from the root for each (the same
      // leaves, records and gather as the per-leaf loop; replicas and holes leave it).
      let q = p + 8;
      if (t == 0) {
        // Nothing to record: clear the run of plain leaves in one pass.
        const left: usize = (q & 4095) == 0 ? 0 : (4096 - (q & 4095)) >> 3;
        const want = (size - unmapped + s - 1) >> <u64>ctz<u64>(s);
        const k = clearPlainLeaves(fmt, q, want < <u64>left ? <usize>want : left);
        iova += <u64>k * s;
        unmapped += <u64>k * s;
      }
      while (unmapped < size && (q & 4095) != 0) {
        const pte = load<u64>(q);
        if (!isPresent(fmt, pte) || (fmt == FMT_AMD && (pte & AMD_NL_MASK) != 0)) break;
        if (t != 0 && isDirty(fmt, pte)) record(t, iova, s);
        store<u64>(q, 0);
        q += 8;
        iova += s;
        unmapped += s;
      }
    }
    gatherAddRange(g, base, iova == 0 ? <u64>0 - base : iova - base);
    gatherSetPgsize(g, s);
    if (iova == 0) break;
  }
  pruneRange(pt, start & ~(<u64>(1 << gsOf(pt)) - 1), iova == 0 ? <u64>-1 : iova, g, true);
  return unmapped;
}

/**
 * iommu_map(): maps [iova, iova+size) to [pa, pa+size) with the largest leaves the
 * pgsize bitmap and the alignment allow. On failure everything it mapped is unmapped
 * again (tables it allocated are queued on `g`) and -errno is returned.
 */
export function ptMap(pt: usize, iovaF: f64, paF: f64, sizeF: f64, prot: u32, g: usize): i32 {
  let iova = <u64>iovaF;
  let pa = <u64>paF;
  let size = <u64>sizeF;
  const bitmap = load<u64>(pt, 24);
  const minSize = bitmap & (~bitmap + 1);
  if (minSize == 0 || ((iova | pa | size) & (minSize - 1)) != 0) return -EINVAL;
  if ((prot & (PROT_READ | PROT_WRITE)) == 0) return -EINVAL;
  const orig = iova;
  const origSize = size;
  const fmt = fmtOf(pt);
  const gs = gsOf(pt);
  const flags = flagsOf(pt);
  let mapped: u64 = 0;
  while (size != 0) {
    const pgsize = pickPgsize(bitmap, iova | pa, size);
    let r: i32 = pgsize == 0 ? -EINVAL : mapOne(pt, iova, pa, pgsize, prot);
    if (r < 0) {
      if (mapped != 0) unmapRange(pt, orig, mapped, g, 0);
      pruneRange(pt, orig, orig + origSize, g, false);
      return r;
    }
    iova += pgsize;
    pa += pgsize;
    size -= pgsize;
    mapped += pgsize;
    if (pgsize == <u64>1 << <u64>gs) {
      // A granule leaf: the next leaves of the run are the next entries of the same
      // last-level table. Fill them without walking from the root for each (the same
      // PTEs as mapOne() writes); an occupied entry, a change of leaf size or the end of
      // the table goes back to mapOne(), which reports -EEXIST or walks on.
      let q = gLeafPtr + 8;
      if (gs == 12 && !hasSizeBelowTable(usableSizes(bitmap, iova - pa), pgsize)) {
        // No size the run can use between the granule and the table span: inside this
        // table pickPgsize() keeps returning the granule, and a granule leaf is its output
        // address ORed into constant bits, so the run is one linear fill.
        const left: usize = (q & 4095) == 0 ? 0 : (4096 - (q & 4095)) >> 3;
        const want = size >> 12;
        const n: usize = want < <u64>left ? <usize>want : left;
        if (n != 0 && pa + (<u64>n << 12) <= LINEAR_PA_LIMIT) {
          const k = fillGranuleLeaves(q, n, pa | makeLeaf(fmt, 0, pgsize, 0, 1, prot, flags));
          const step = <u64>k << 12;
          iova += step;
          pa += step;
          size -= step;
          mapped += step;
        }
        continue;
      }
      while (size != 0 && (q & 4095) != 0 && load<u64>(q) == 0 && pickPgsize(bitmap, iova | pa, size) == pgsize) {
        store<u64>(q, makeLeaf(fmt, gs == 11 ? (pa >> 11) << 12 : pa, pgsize, 0, 1, prot, flags));
        q += 8;
        iova += pgsize;
        pa += pgsize;
        size -= pgsize;
        mapped += pgsize;
      }
    }
  }
  return 0;
}

/** iommu_unmap() / unmap_read_dirty (target != 0). Returns bytes unmapped (0 on misalignment). */
export function ptUnmap(pt: usize, iovaF: f64, sizeF: f64, g: usize, t: usize): f64 {
  const iova = <u64>iovaF;
  const size = <u64>sizeF;
  const bitmap = load<u64>(pt, 24);
  const minSize = bitmap & (~bitmap + 1);
  if (((iova | size) & (minSize - 1)) != 0 || size == 0) return 0;
  return <f64>unmapRange(pt, iova, size, g, t);
}

/** iova_to_phys(): the physical address `iova` translates to, or -1. */
export function ptIovaToPhys(pt: usize, iovaF: f64): f64 {
  const iova = <u64>iovaF;
  const p = fetch(pt, iova);
  if (p == 0) return -1;
  return <f64>(physOf(pt, load<u64>(p), gSize) + (iova & (gSize - 1)));
}

/** Output address of a leaf PTE (undoing the mock's granule-unit address field). */
function physOf(pt: usize, pte: u64, size: u64): u64 {
  if (gsOf(pt) == 11) return (((pte & 0x000f_ffff_ffff_f000) >> 12) << 11) & ~(size - 1);
  return leafAddr(fmtOf(pt), pte, size);
}

function setOut(pt: usize, iova: u64, pte: u64, e: usize): void {
  store<u64>(pt, physOf(pt, pte, gSize) + (iova & (gSize - 1)), 40);
  store<u64>(pt, iova & ~(gSize - 1), 48);
  store<u64>(pt, gSize, 56);
  store<usize>(pt, e, 64);
  store<u32>(pt, writeNeedsNoUpdate(fmtOf(pt), pte, flagsOf(pt)) ? 1 : 0, 68);
  store<u32>(pt, gLevel, 72);
  store<u32>(pt, isWritable(fmtOf(pt), pte) ? 1 : 0, 76);
}

/** Looks up the leaf for `iova` without touching it; fills the out fields. 1 found, 0 not. */
export function ptLookup(pt: usize, iovaF: f64): u32 {
  const iova = <u64>iovaF;
  const p = fetch(pt, iova);
  if (p == 0) return 0;
  const e = p + (<usize>((iova >> <u64>(gsOf(pt) + 9 * gLevel)) & (<u64>gCount - 1)) << 3);
  setOut(pt, iova, load<u64>(e), e);
  return 1;
}

/** Device access status codes. */
const DEV_OK: i32 = 0;
const DEV_NOT_PRESENT: i32 = 1;
const DEV_PERM: i32 = 2;

/**
 * The walk a DMA access performs: translate, check permission, and set the access/dirty
 * state in the addressed PTE (for AMD replicas: the one replica that covers `iova`, as
 * hardware may). Fills the out fields for the IOTLB. Returns 0, 1 (no translation) or 2
 * (permission fault).
 */
export function ptDeviceAccess(pt: usize, iovaF: f64, write: u32): i32 {
  const iova = <u64>iovaF;
  const fmt = fmtOf(pt);
  const p = fetch(pt, iova);
  if (p == 0) return DEV_NOT_PRESENT;
  return deviceAccessAt(pt, fmt, iova, p + (<usize>((iova >> <u64>(gsOf(pt) + 9 * gLevel)) & (<u64>gCount - 1)) << 3), write);
}

/** ptDeviceAccess once the walk found the PTE `e` (the fetch globals describe its leaf). */
// @ts-ignore: decorator
@inline function deviceAccessAt(pt: usize, fmt: u32, iova: u64, e: usize, write: u32): i32 {
  const pte = load<u64>(e);
  if (write ? !isWritable(fmt, pte) : !isReadable(fmt, pte)) return DEV_PERM;
  const next = write ? hwOnWrite(fmt, pte, flagsOf(pt)) : hwOnRead(fmt, pte, flagsOf(pt));
  if (next != pte) store<u64>(e, next);
  setOut(pt, iova, next, e);
  return DEV_OK;
}

/** Slots of ptDeviceAccessRange's ring (IOTLBs larger than this take the JS walk). */
const DEVICE_RING_SLOTS: u32 = 256;
const DEVICE_RING = memory.data(<i32>DEVICE_RING_SLOTS * 48, 16);

/** Address of ptDeviceAccessRange's ring (DEVICE_RING_SLOTS slots of 6 f64). */
export function ptDeviceRing(): usize { return DEVICE_RING; }

/**
 * ptDeviceAccess over [iova, end), leaf by leaf in order, stopping at the first fault: the
 * walk a DMA access of a range that misses the IOTLB performs (each leaf walked once, with
 * the same A/D update). The translations the walk would cache go to a ring of `cap` slots
 * at `ring` (slot = leaf index % cap, 6 f64 each: leaf IOVA, leaf size, leaf phys,
 * writable, no-update, PTE address), so the caller can insert the last `cap` into its FIFO.
 * The ring is static (ptDeviceRing(), DEVICE_RING_SLOTS slots): a DMA allocates nothing.
 * Returns leaves walked * 4 + status (0 ok, 1 no translation, 2 permission fault).
 */
export function ptDeviceAccessRange(pt: usize, iovaF: f64, endF: f64, write: u32, cap: u32): f64 {
  const ring = DEVICE_RING;
  if (cap == 0 || cap > DEVICE_RING_SLOTS) cap = DEVICE_RING_SLOTS;
  let iova = <u64>iovaF;
  const end = <u64>endF;
  let walked: u32 = 0;
  let slot: u32 = 0;
  const fmt = fmtOf(pt);
  const gs = <u64>gsOf(pt);
  // The last-level table of the previous leaf (0: none). The next leaf in the same table is
  // the entry fetch() would return when it is a present leaf of that level (no AMD
  // replicas): walking only changes leaf PTEs, so the path from the root is the same.
  let tbl: usize = 0;
  let tblShift: u64 = 0;
  let tblKey: u64 = 0;
  let level: u32 = 0;
  let lsize: u64 = 0;
  while (iova < end) {
    let s: i32;
    let e: usize = 0;
    if (tbl != 0 && (iova >> (tblShift + 9)) == tblKey) {
      const q = tbl + (<usize>((iova >> tblShift) & 511) << 3);
      const pte = load<u64>(q);
      if (isPresent(fmt, pte) && isLeaf(fmt, pte, level) && !(fmt == FMT_AMD && ((pte & AMD_NL_MASK) >> AMD_NL_SHIFT) == 7)) e = q;
    }
    if (e != 0) {
      gLevel = level;
      gSize = lsize;
      gCount = 1;
      s = deviceAccessAt(pt, fmt, iova, e, write);
    } else {
      s = ptDeviceAccess(pt, <f64>iova, write);
      if (s == DEV_OK && gCount == 1) {
        level = gLevel;
        lsize = gSize;
        tblShift = gs + 9 * <u64>level;
        tblKey = iova >> (tblShift + 9);
        const pe = load<usize>(pt, 64);
        tbl = pe - (<usize>((iova >> tblShift) & 511) << 3);
      } else tbl = 0;
    }
    if (s != DEV_OK) return <f64>walked * 4 + <f64>s;
    const leafIova = load<u64>(pt, 48);
    const size = load<u64>(pt, 56);
    const o = ring + <usize>slot * 48;
    store<f64>(o, <f64>leafIova);
    store<f64>(o, <f64>size, 8);
    store<f64>(o, <f64>(load<u64>(pt, 40) - (iova - leafIova)), 16);
    store<f64>(o, <f64>load<u32>(pt, 76), 24);
    store<f64>(o, <f64>load<u32>(pt, 68), 32);
    store<f64>(o, <f64>load<usize>(pt, 64), 40);
    walked++;
    if (++slot == cap) slot = 0;
    iova = leafIova + size;
    if (iova == 0) break;
  }
  return <f64>walked * 4;
}

/**
 * A write through a cached translation whose cached state is clean: the hardware's atomic
 * dirty update on the PTE it was walked from. The update only lands on a PTE that is still
 * present (a cleared PTE loses it: the write itself already went through the stale
 * translation). Returns 0 (updated), 1 (PTE gone: update lost) or 2 (no longer writable:
 * the write faults).
 */
export function ptDeviceDirtyUpdate(pt: usize, e: usize): i32 {
  const fmt = fmtOf(pt);
  const pte = load<u64>(e);
  if (!isPresent(fmt, pte)) return DEV_NOT_PRESENT;
  if (!isWritable(fmt, pte)) return DEV_PERM;
  const next = hwOnWrite(fmt, pte, flagsOf(pt));
  if (next != pte) store<u64>(e, next);
  return DEV_OK;
}

/** The selftest set_dirty(): marks the leaf PTE covering `iova` dirty. 0 or -ENOENT. */
export function ptSetDirty(pt: usize, iovaF: f64): i32 {
  const iova = <u64>iovaF;
  const p = fetch(pt, iova);
  if (p == 0) return -ENOENT;
  const e = p + (<usize>((iova >> <u64>(gsOf(pt) + 9 * gLevel)) & (<u64>gCount - 1)) << 3);
  store<u64>(e, makeDirty(fmtOf(pt), load<u64>(e)));
  return 0;
}

/**
 * read_and_clear_dirty(): the Gen A driver loop. From `iova`, fetch the leaf, report it
 * (current walk position, full leaf size) when any replica is dirty, clear unless
 * NO_CLEAR, and step by the leaf size; holes are skipped by the span of the empty entry
 * (AMD/Intel) or fail with -EINVAL (ARM). Whole last-level tables take the v128 path.
 * `t` may be 0 (clear only, as iopt_clear_dirty_data does).
 */
export function ptReadDirty(pt: usize, iovaF: f64, sizeF: f64, flags: u32, t: usize, g: usize): i32 {
  let iova = <u64>iovaF;
  const size = <u64>sizeF;
  const fmt = fmtOf(pt);
  const gs = gsOf(pt);
  if (size == 0) return fmt == FMT_ARM ? -EINVAL : 0;
  const end = iova + size;
  const clear = (flags & DIRTY_NO_CLEAR) == 0;
  const span0 = <u64>1 << <u64>(gs + 9);
  const fastOk = t == 0 || <u32>load<u32>(t, 4) == gs;
  const span1 = span0 << 9;
  let l1Table: usize = 0;
  let l1Base: u64 = <u64>-1;
  while (iova < end) {
    if (fastOk && (iova & (span1 - 1)) == 0 && end - iova >= span1) {
      const table = tableAt(pt, iova, 1);
      if (table != 0 && harvestBlockTable(fmt, table, iova, gs, clear, t, g)) {
        iova += span1;
        if (iova == 0) break;
        continue;
      }
    }
    if (fastOk && (iova & (span0 - 1)) == 0 && end - iova >= span0) {
      // The level-1 table is looked up once per 512 last-level tables, and the run of
      // whole tables under it that lies inside the range is harvested in one call.
      const base1 = iova & ~(span1 - 1);
      if (base1 != l1Base) {
        l1Table = tableAt(pt, iova, 1);
        l1Base = base1;
      }
      if (l1Table != 0) {
        const i = <usize>((iova >> <u64>(gs + 9)) & 511);
        const whole = (end - iova) >> <u64>(gs + 9);
        const i1: usize = whole >= <u64>(512 - i) ? 512 : i + <usize>whole;
        const n = harvestLeafRun(fmt, l1Table, i, i1, iova, gs, clear, t, g, load<u32>(pt, 36) != 0);
        if (n != 0) {
          const step = <u64>n << <u64>(gs + 9);
          iova += step;
          if (iova < step) break;
          // Otherwise the table after the run was refused: walk it per leaf (below).
          if (n == i1 - i) continue;
        }
      }
    }
    const p = fetch(pt, iova);
    const s = gSize;
    if (p == 0) {
      if (fmt == FMT_ARM) return -EINVAL;
      iova += s;
      if (iova < s) break;
      continue;
    }
    const c = <usize>gCount;
    let d = false;
    for (let i: usize = 0; i < c; i++) {
      const q = p + (i << 3);
      const pte = load<u64>(q);
      if (isDirty(fmt, pte)) {
        d = true;
        if (clear) store<u64>(q, makeClean(fmt, pte));
      }
    }
    if (d) {
      record(t, iova, s);
      if (clear) gatherAddRange(g, iova, s);
    }
    iova += s;
    if (iova < s) break;
  }
  return 0;
}

/**
 * Write-protect and collect dirties (the op Jason Gunthorpe suggested instead of
 * unmap_read_dirty): for every leaf in range, record it when dirty, then remove write
 * permission and the dirty state, and add it to the gather. After the caller's IOTLB flush
 * no write can reach these pages without faulting.
 */
export function ptWriteProtect(pt: usize, iovaF: f64, sizeF: f64, t: usize, g: usize): i32 {
  let iova = <u64>iovaF;
  const end = iova + <u64>sizeF;
  const fmt = fmtOf(pt);
  while (iova < end) {
    const p = fetch(pt, iova);
    const s = gSize;
    if (p != 0) {
      const c = <usize>gCount;
      let d = false;
      for (let i: usize = 0; i < c; i++) {
        const q = p + (i << 3);
        const pte = load<u64>(q);
        if (isDirty(fmt, pte)) d = true;
        store<u64>(q, makeWriteProtected(fmt, pte));
      }
      if (d) record(t, iova, s);
      gatherAddRange(g, iova & ~(s - 1), s);
    }
    iova += s;
    if (iova < s) break;
  }
  return 0;
}

/** Out fields after ptLookup / ptDeviceAccess. */
export function ptOutPhys(pt: usize): f64 { return <f64>load<u64>(pt, 40); }
export function ptOutLeafIova(pt: usize): f64 { return <f64>load<u64>(pt, 48); }
export function ptOutLeafSize(pt: usize): f64 { return <f64>load<u64>(pt, 56); }
export function ptOutPte(pt: usize): usize { return load<usize>(pt, 64); }
export function ptOutNoUpdate(pt: usize): u32 { return load<u32>(pt, 68); }
export function ptOutLevel(pt: usize): u32 { return load<u32>(pt, 72); }
export function ptOutWritable(pt: usize): u32 { return load<u32>(pt, 76); }

/** A raw PTE's low and high halves (for tests and the CLI; no BigInt on the boundary). */
export function pteLo(e: usize): u32 { return <u32>load<u64>(e); }
export function pteHi(e: usize): u32 { return <u32>(load<u64>(e) >> 32); }
