/**
 * The dirty-bitmap read-out of type1: update_user_bitmap() with the kernel's exact word
 * operations, run on the Wasm `pack` kernels, and the per-GET clear/repopulate step of
 * vfio_iova_dirty_bitmap(). Per-dma bitmaps persist between calls, so the kernel's quirk of
 * stale shifted bits (reference §8.8) comes out the same.
 */
import { pack, bitmapBytes } from "../bitmap";
import { U64_MASK } from "../uapi/vfio";
import { Errno } from "../uapi/errno";
import type { Task } from "../process/task";
import type { VfioDma } from "./dma";
import type { WasmCore } from "../wasm/core";
import type { Mutex } from "./lock";
import type { Type1Options } from "./options";
import { FRAME_SIZE as FRAME_BYTES, type UserMemory } from "../process/memory";

/**
 * What the read-out needs from its container (struct vfio_iommu, src/type1/vfio-iommu.ts,
 * which implements it): declared here so this lower module does not import the container.
 */
export interface DirtyBitmapHost {
  readonly lock: Mutex;
  readonly core: WasmCore;
  readonly opts: Type1Options;
  /** num_non_pinned_groups. */
  readonly numNonPinnedGroups: number;
  /** Every domain tracks dirty bits in its page tables (a model extension). */
  readonly hwDirty: boolean;
  /** The staging buffer of COPY_CHUNK_WORDS words (allocated by START). */
  copyScratch(): number;
  /** Harvests the dma's page-table dirty bits into the bitmap at `bitmapPtr`, ORed in. */
  vfioDmaHarvestHwDirty(dma: VfioDma, pgsize: bigint, bitmapPtr: number): void;
  /** vfio_dma_populate_bitmap(). */
  vfioDmaPopulateBitmap(dma: VfioDma, pgsize: bigint): void;
  /**
   * Bumped whenever a dma, its bitmap, its externally pinned pages, its mapped state or its
   * bitmapLowClean flag changes: `reportCache` is valid only for the value it was built at.
   */
  dirtyGen: number;
  /** The batch records of the last GET_BITMAP that went batched as a whole (see ReportCache). */
  reportCache: ReportCache | null;
}

/**
 * The batch records (DESC_BYTES each, lowClean = 1) of a GET_BITMAP range whose every dma
 * took the batched path, kept in JS memory so that the next GET of the same range with
 * nothing changed (same dirtyGen) skips the walk over the dmas: with 64,000 mappings that
 * walk is a cache miss or five per dma (the dma, its BigInt iova and size, its bitmap, its
 * pfn list) and was most of the call. Nothing is allocated in linear memory for it, so
 * GET_BITMAP still allocates nothing there, as in Linux.
 */
export interface ReportCache {
  gen: number;
  base: bigint;
  last: bigint;
  pgsize: bigint;
  /** Offsets from the user bitmap's address of the first and past the last word touched. */
  loOff: number;
  hiOff: number;
  records: Float64Array;
  count: number;
}

const u64 = (x: bigint): bigint => x & U64_MASK;

/** u64 words staged per step of the bitmap copy (the staging buffer holds this many). */
export const COPY_CHUNK_WORDS = 4096;

/** Geometry of one dma's copy-out: where its bits land in the user bitmap. */
interface CopyGeometry {
  nbits: number;
  /** u64 index in the user bitmap of the first word written. */
  copyOffset: bigint;
  /** bit_offset % 64. */
  shift: number;
  /** Whole u64 words written: DIRTY_BITMAP_BYTES(nbits + shift) / 8. */
  words: number;
  /** User address of the first word written. */
  dst: bigint;
}

function geometry(dma: VfioDma, ubuf: bigint, baseIova: bigint, pgsize: bigint): CopyGeometry {
  const nbits = Number(dma.size / pgsize);
  const bitOffset = (dma.iova - baseIova) / pgsize;
  const copyOffset = bitOffset / 64n;
  const shift = Number(bitOffset % 64n);
  const words = bitmapBytes(nbits + shift) / 8;
  return { nbits, copyOffset, shift, words, dst: u64(ubuf + copyOffset * 8n) };
}

/** copy_to_user from linear memory: straight into user frames when they share the core. */
function copyOut(iommu: DirtyBitmapHost, current: Task, dst: bigint, src: number, len: number): number {
  const mem = current.mm?.memory;
  if (mem && mem.core === iommu.core) return mem.copyToUserFromLinear(dst, src, len);
  return current.copyToUser(dst, iommu.core.u8.slice(src, src + len));
}

/**
 * Faults in the writable part of [dst, dst+len) of the task's memory in the order Linux's
 * accesses take: with a bit shift the leftover word is read first (a read fault: the huge
 * zero page in an untouched block, which the write then splits), then the words are
 * written. False when a page cannot be allocated.
 */
function faultInUserWords(current: Task, dst: bigint, len: number, shift: number): boolean {
  const mem = current.mm?.memory;
  if (!mem || dst > BigInt(Number.MAX_SAFE_INTEGER)) return true;
  if (shift) current.copyFromUser(dst, 8);
  const writable = mem.accessibleLength(Number(dst), len, true);
  return mem.faultInWriteable(dst, writable) === 0;
}

/**
 * update_user_bitmap(): reports one dma's bits into the user bitmap at `ubuf` relative to
 * `baseIova`. Marks everything dirty first when an IOMMU-backed group cannot report
 * (num_non_pinned_groups && iommu_mapped). With a non-zero shift, the dma bitmap is shifted
 * in place and the user's first word is ORed into it (all 64 bits), then whole words are
 * copied out. Returns 0 or -EFAULT (the in-place shift has happened either way, like Linux).
 */
export function updateUserBitmap(iommu: DirtyBitmapHost, current: Task, ubuf: bigint, dma: VfioDma, baseIova: bigint, pgsize: bigint): number {
  iommu.lock.assertHeld();
  const bitmap = dma.bitmap;
  if (!bitmap) return 0;
  const g = geometry(dma, ubuf, baseIova, pgsize);
  // copy_to_user() faults the user words in; a page that cannot be had fails the call here,
  // before the harvest or bitmap_set() below changes anything. (Unwritable words still
  // fail at the copy, after the bitmap has changed, as in Linux.)
  if (!faultInUserWords(current, g.dst, g.words * 8, g.shift)) return -Errno.EFAULT;
  if (iommu.hwDirty && dma.iommuMapped) {
    // Dirty-capable hardware (a model extension): IOMMU-backed devices report what they
    // actually wrote, harvested from the page tables, instead of "every mapped page".
    iommu.vfioDmaHarvestHwDirty(dma, pgsize, bitmap.ptr);
    dma.bitmapLowClean = false;
    iommu.dirtyGen++;
  } else if (iommu.numNonPinnedGroups && dma.iommuMapped) {
    bitmap.set(0, g.nbits);
    dma.bitmapLowClean = false;
    iommu.dirtyGen++;
  }
  const core = iommu.core;
  const bytes = g.words * 8;
  // The staging buffer was allocated with the bitmaps (DIRTY_PAGES START): Linux's
  // update_user_bitmap() allocates nothing, so ENOMEM is never its answer here.
  const scratch = iommu.copyScratch();
  if (g.shift === 0) {
    if (iommu.opts.bitmapCopy === "byte") {
      // The v12 proposal copied byte by byte; the result is the same words.
      for (let k0 = 0; k0 < g.words; k0 += COPY_CHUNK_WORDS) {
        const n = Math.min(COPY_CHUNK_WORDS, g.words - k0);
        pack(core, "byte", scratch, 0, bitmap.ptr + 8 * k0, n * 64);
        if (copyOut(iommu, current, g.dst + BigInt(8 * k0), scratch, n * 8)) return -Errno.EFAULT;
      }
      return 0;
    }
    return copyOut(iommu, current, g.dst, bitmap.ptr, bytes) ? -Errno.EFAULT : 0;
  }
  // bitmap_shift_left() over nbits + shift bits, in place, then bitmap_or() with the user's
  // word. pack() computes the shifted words of a chunk when its first destination word holds
  // what the word below contributes; chunks go from the top down, so every source word is
  // read before it is overwritten.
  const leftover = current.copyFromUser(g.dst, 8);
  const s = BigInt(g.shift);
  for (let k1 = g.words; k1 > 0; ) {
    const k0 = Math.max(0, k1 - COPY_CHUNK_WORDS);
    if (k0 > 0) core.dv.setBigUint64(scratch, core.dv.getBigUint64(bitmap.ptr + 8 * (k0 - 1), true) >> (64n - s), true);
    else if (leftover) core.u8.set(leftover, scratch);
    else core.x.fillBytes(scratch, 0, 8);
    pack(core, iommu.opts.bitmapCopy, scratch, g.shift, bitmap.ptr + 8 * k0, (k1 - k0) * 64 - g.shift);
    core.x.copyBytes(bitmap.ptr + 8 * k0, scratch, (k1 - k0) * 8);
    k1 = k0;
  }
  if (!leftover) return -Errno.EFAULT;
  return copyOut(iommu, current, g.dst, bitmap.ptr, bytes) ? -Errno.EFAULT : 0;
}

/**
 * One dma of vfio_iova_dirty_bitmap(): update_user_bitmap(), then bitmap_clear(0, nbits) and
 * vfio_dma_populate_bitmap(). Returns 0 or -EFAULT (then nothing is cleared, like Linux).
 */
export function reportAndClear(iommu: DirtyBitmapHost, current: Task, ubuf: bigint, dma: VfioDma, baseIova: bigint, pgsize: bigint): number {
  if (reportAllDirtyFused(iommu, current, ubuf, dma, baseIova, pgsize)) return 0;
  const r = updateUserBitmap(iommu, current, ubuf, dma, baseIova, pgsize);
  if (r) return r;
  const bitmap = dma.bitmap;
  if (!bitmap) return 0;
  bitmap.clear(0, Number(dma.size / pgsize));
  dma.bitmapLowClean = true;
  iommu.vfioDmaPopulateBitmap(dma, pgsize);
  return 0;
}

const ONES = U64_MASK;

/** Bytes of one dma record of the Wasm batch (assembly/type1/report.ts): 5 f64. */
const DESC_BYTES = 40;
/** Batched dmas sent to Wasm at a time: about what the staging buffer holds. */
const FLUSH_EVERY = Math.floor((COPY_CHUNK_WORDS * 8 - 64) / DESC_BYTES);
/** A dma whose user words reach this size goes the per-dma way (a write fault over a whole 2 MiB block changes the PMD state). */
const BATCH_MAX_BYTES = 1 << 20;
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Whether the container and the user bitmap allow the batched path at all (the dmas are
 * checked one by one): the all-dirty case on this core's memory, word copies, an 8-byte
 * aligned user bitmap and addresses that are exact as doubles.
 */
function batchableCall(iommu: DirtyBitmapHost, mem: UserMemory | undefined, ubuf: bigint, baseIova: bigint): mem is UserMemory {
  return (
    mem !== undefined && mem.core === iommu.core && !iommu.hwDirty && iommu.numNonPinnedGroups > 0 && iommu.opts.bitmapCopy !== "byte" &&
    (ubuf & 7n) === 0n && ubuf <= SAFE && baseIova <= SAFE
  );
}

/**
 * Writes the frame table of the user words [lo, hi) at the start of the staging buffer.
 * Returns where the records go and the user address of frames[0], or null when a word is
 * not settled (would fault) or no record fits after the table.
 */
function stageFrames(core: WasmCore, mem: UserMemory, scratch: number, lo: number, hi: number): { descStart: number; userBase: number } | null {
  const frames = mem.settledFrames(lo, hi - lo);
  if (frames === null) return null;
  const descStart = scratch + Math.ceil((frames.length * 4) / 8) * 8;
  if (descStart + DESC_BYTES > scratch + COPY_CHUNK_WORDS * 8) return null;
  const dv = core.dv;
  for (let i = 0; i < frames.length; i++) dv.setUint32(scratch + 4 * i, frames[i], true);
  return { descStart, userBase: Math.floor(lo / FRAME_BYTES) * FRAME_BYTES };
}

/**
 * vfio_iova_dirty_bitmap()'s loop when `iommu.reportCache` describes [baseIova, last] and
 * nothing changed since it was built: its records go through the Wasm kernel a staging
 * buffer at a time, and no dma object is touched (their bitmapLowClean flags are already
 * true: the run that built the cache set them, and any change since would have bumped
 * dirtyGen). False (nothing done) when the cache does not apply; the call then takes
 * reportAndClearAll(), with the same results.
 */
export function reportAndClearCached(iommu: DirtyBitmapHost, current: Task, ubuf: bigint, baseIova: bigint, last: bigint, pgsize: bigint): boolean {
  const c = iommu.reportCache;
  if (c === null || c.gen !== iommu.dirtyGen || c.base !== baseIova || c.last !== last || c.pgsize !== pgsize) return false;
  const mem = current.mm?.memory;
  if (!batchableCall(iommu, mem, ubuf, baseIova)) return false;
  const ub = Number(ubuf);
  if (ub + c.hiOff > Number.MAX_SAFE_INTEGER) return false;
  const staged = stageFrames(iommu.core, mem, iommu.copyScratch(), ub + c.loOff, ub + c.hiOff);
  if (staged === null) return false;
  runRecords(iommu, staged, c.records, 0, c.count, ub);
  return true;
}

/**
 * Runs records [from, from+count) of `records` through the Wasm kernel, copied into the
 * staging buffer after the frame table `staged` describes, as many per call as fit.
 */
function runRecords(iommu: DirtyBitmapHost, staged: { descStart: number; userBase: number }, records: Float64Array, from: number, count: number, ub: number): void {
  const core = iommu.core;
  const scratch = iommu.copyScratch();
  const f64 = DESC_BYTES / 8;
  const perCall = Math.floor((scratch + COPY_CHUNK_WORDS * 8 - staged.descStart) / DESC_BYTES);
  for (let i = from; i < from + count; i += perCall) {
    const n = Math.min(perCall, from + count - i);
    new Float64Array(core.u8.buffer, staged.descStart, n * f64).set(records.subarray(i * f64, (i + n) * f64));
    core.x.type1ReportAllDirty(staged.descStart, n, scratch, staged.userBase, ub);
  }
}

/**
 * vfio_iova_dirty_bitmap()'s loop: reportAndClear() for each dma of `dmas` (ascending, all
 * inside the range), returning the first error. Runs of dmas that take the fused all-dirty
 * path and whose user words need no fault (the user bitmap already written, frames present:
 * UserMemory.settledFrames) go to Wasm in batches, one call per batch instead of a dozen
 * BigInt operations and allocations per dma; the bytes and dma bitmaps that result are
 * those of the per-dma fused path. The first GET into a fresh bitmap faults it in per dma.
 * When every dma went batched, the records are kept in `iommu.reportCache` (for the range
 * up to `last`, its last iova) for reportAndClearCached().
 */
export function reportAndClearAll(iommu: DirtyBitmapHost, current: Task, ubuf: bigint, dmas: readonly VfioDma[], baseIova: bigint, pgsize: bigint, last: bigint): number {
  const mem = current.mm?.memory;
  const lastDma = dmas[dmas.length - 1];
  if (dmas.length <= 1 || !batchableCall(iommu, mem, ubuf, baseIova) || lastDma.iova + lastDma.size > SAFE) {
    for (const dma of dmas) {
      const r = reportAndClear(iommu, current, ubuf, dma, baseIova, pgsize);
      if (r) return r;
    }
    return 0;
  }
  const ub = Number(ubuf);
  const base = Number(baseIova);
  const pg = Number(pgsize);
  // The user words every dma of the list may touch: from the first one's first word to the
  // last one's end (the list is ascending and disjoint).
  const lo = ub + Math.floor((Number(dmas[0].iova) - base) / pg / 64) * 8;
  const hi = ub + Math.ceil((Number(lastDma.iova + lastDma.size) - base) / pg / 64) * 8;
  // The records of every batched dma, in order. The previous cache's buffer is reused when
  // it is big enough (a fresh 2.5 MB buffer per call at 64,000 mappings set off garbage
  // collections); that cache is dropped, since its records are overwritten from here on.
  const f64 = DESC_BYTES / 8;
  const need = dmas.length * f64;
  const prev = iommu.reportCache?.records;
  const records = prev !== undefined && prev.length >= need && prev.length <= 2 * need ? prev : new Float64Array(need);
  iommu.reportCache = null;
  let nrec = 0;
  let allBatched = true;
  // The frame table of the user words, staged while no per-dma call has run since (null:
  // not staged yet; false: the words are not settled).
  let staged: { descStart: number; userBase: number } | null | false = null;
  const pending: VfioDma[] = [];
  const flush = (): void => {
    if (pending.length === 0 || !staged) return;
    runRecords(iommu, staged, records, nrec - pending.length, pending.length, ub);
    for (const d of pending) d.bitmapLowClean = true;
    pending.length = 0;
  };
  for (const dma of dmas) {
    const bitmap = dma.bitmap;
    if (bitmap === null) continue; // update_user_bitmap() and the clear do nothing
    if (staged !== false && dma.iommuMapped && dma.pfnList.size === 0) {
      const nbits = Number(dma.size) / pg;
      const bitOffset = (Number(dma.iova) - base) / pg;
      const bytes = Math.ceil((nbits + (bitOffset % 64)) / 64) * 8;
      if (bytes < BATCH_MAX_BYTES && Number.isSafeInteger(bitOffset)) {
        if (staged === null) staged = stageFrames(iommu.core, mem, iommu.copyScratch(), lo, hi) ?? false;
        if (staged) {
          const r = nrec++ * f64;
          records[r] = bitmap.ptr;
          records[r + 1] = bitmap.bytes / 8;
          records[r + 2] = nbits;
          records[r + 3] = bitOffset;
          records[r + 4] = dma.bitmapLowClean ? 1 : 0;
          // A staging buffer's worth at a time: a short `pending` stays in cache.
          if (pending.push(dma) === FLUSH_EVERY) flush();
          continue;
        }
      }
    }
    allBatched = false;
    flush();
    const r = reportAndClear(iommu, current, ubuf, dma, baseIova, pgsize);
    // The per-dma path uses the staging buffer and may fault pages in: stage again.
    if (staged) staged = null;
    if (r) return r;
  }
  flush();
  if (allBatched && nrec > 0) {
    // What the records describe now: every batched dma's low words are clean.
    for (let i = 0; i < nrec; i++) records[i * f64 + 4] = 1;
    iommu.reportCache = { gen: iommu.dirtyGen, base: baseIova, last, pgsize, loOff: lo - ub, hiOff: hi - ub, records, count: nrec };
  }
  return 0;
}

/**
 * The common case of an IOMMU-backed device (every mapped page reported dirty), with the
 * set-all, shift/OR, copy-out and clear passes fused: the user's words between the edges are
 * all ones (one memset), only the first and last words are computed, and the dma bitmap's
 * low words are cleared only when something had set them. Observable results, including the
 * stale bits left above nbits, are exactly those of the unfused path. Returns false (doing
 * nothing) when the case does not apply: not all-dirty (or dirty-capable hardware), pinned pages to repopulate, the byte
 * variant (which models the v12 loop), another core's memory, or a user range that would fault.
 */
function reportAllDirtyFused(iommu: DirtyBitmapHost, current: Task, ubuf: bigint, dma: VfioDma, baseIova: bigint, pgsize: bigint): boolean {
  const bitmap = dma.bitmap;
  const mem = current.mm?.memory;
  if (!bitmap || !mem || mem.core !== iommu.core) return false;
  if (iommu.hwDirty || !(iommu.numNonPinnedGroups && dma.iommuMapped) || dma.pfnList.size > 0 || iommu.opts.bitmapCopy === "byte") return false;
  const g = geometry(dma, ubuf, baseIova, pgsize);
  if (g.dst > BigInt(Number.MAX_SAFE_INTEGER)) return false;
  const dst = Number(g.dst);
  const bytes = g.words * 8;
  // Fault the user words in first (copy_to_user's page faults): from here on no write can
  // fail, so the dma bitmap is never cleared with its bits left unreported.
  if (!faultInUserWords(current, g.dst, bytes, g.shift) || mem.accessibleLength(dst, bytes, true) !== bytes) return false;
  const core = iommu.core;
  const s = BigInt(g.shift);
  const full = Math.floor(g.nbits / 64);
  const rem = g.nbits % 64;
  const allocWords = bitmap.bytes / 8;
  const old = (k: number): bigint => (k >= 0 && k < allocWords ? core.dv.getBigUint64(bitmap.ptr + 8 * k, true) : 0n);
  // A = the bitmap after bitmap_set(0, nbits); N = after the shift (and the OR of word 0).
  const A = (k: number): bigint => (k < 0 ? 0n : k < full ? ONES : old(k) | (k === full && rem ? (1n << BigInt(rem)) - 1n : 0n));
  let leftover = 0n;
  if (g.shift) {
    const lo = current.copyFromUser(g.dst, 8);
    if (!lo) return false;
    leftover = new DataView(lo.buffer, lo.byteOffset, 8).getBigUint64(0, true);
  }
  const N = (k: number): bigint => {
    const v = g.shift ? ((A(k) << s) | (A(k - 1) >> (64n - s))) & U64_MASK : A(k);
    return k === 0 && g.shift ? v | leftover : v;
  };
  const midStart = g.shift ? 1 : 0;
  const midEnd = Math.max(midStart, Math.min(full, g.words));
  const edges: number[] = [];
  for (let k = 0; k < midStart && k < g.words; k++) edges.push(k);
  for (let k = Math.max(midEnd, midStart); k < g.words; k++) edges.push(k);
  const userEdge = edges.map((k) => N(k));
  // New kernel bitmap words from `full` up: the shifted words minus the cleared [0, nbits).
  const keep: Array<[number, bigint]> = [];
  for (let k = full; k < g.words; k++) keep.push([k, k === full ? N(k) & ~((1n << BigInt(rem)) - 1n) & U64_MASK : N(k)]);

  if (midEnd > midStart && !mem.fillRaw(dst + midStart * 8, (midEnd - midStart) * 8, 0xff)) return false;
  const w = new Uint8Array(8);
  const wv = new DataView(w.buffer);
  for (let i = 0; i < edges.length; i++) {
    wv.setBigUint64(0, userEdge[i], true);
    if (!mem.writeRaw(dst + edges[i] * 8, w)) throw new Error("BUG: a faulted-in user word could not be written");
  }
  if (!dma.bitmapLowClean && full > 0) core.x.fillBytes(bitmap.ptr, 0, Math.min(full, allocWords) * 8);
  for (const [k, v] of keep) core.dv.setBigUint64(bitmap.ptr + 8 * k, v, true);
  dma.bitmapLowClean = true;
  return true;
}
