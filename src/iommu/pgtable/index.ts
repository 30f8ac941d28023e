/**
 * I/O page tables in Wasm linear memory (the io_pgtable layer): AMD v1, Intel second
 * stage and ARM LPAE stage 1 with their real PTE bits, plus the two small structs every
 * walk uses: the IOTLB gather (iommu_iotlb_gather) and the dirty target (one window of
 * an iova_bitmap). This module owns their handles; it knows nothing about IOTLBs,
 * devices or ioctls (src/iommu/hw/ builds the domain on top).
 *
 * Addresses are plain numbers: integers below 2^53 (MAX_ADDR). Every method validates
 * its arguments and returns -errno instead of throwing.
 */
import { WasmCore } from "../../wasm/core";
import { Errno } from "../../uapi/errno";
import { Bitmap } from "../../bitmap";
import {
  PtFormat, formatCode, defaultLevels, defaultPgsizes, PT_FLAG_HD, PT_FLAG_TRACK,
} from "./format";

export * from "./format";

/** Addresses and sizes must stay below this (the f64-exact boundary of the Wasm core). */
export const MAX_ADDR = 2 ** 53;

const GATHER_BYTES = 32;
const TARGET_BYTES = 48;

function isAddr(x: number): boolean {
  return Number.isSafeInteger(x) && x >= 0 && x < MAX_ADDR;
}

/** struct iommu_iotlb_gather, living in Wasm memory. */
export class IotlbGather {
  /** Linear-memory address of the struct. */
  readonly ptr: number;

  private constructor(readonly core: WasmCore, ptr: number) {
    this.ptr = ptr;
  }

  /** Allocates an initialised gather, or null on ENOMEM. */
  static create(core: WasmCore): IotlbGather | null {
    const p = core.alloc(GATHER_BYTES);
    if (p === 0) return null;
    core.x.gatherInit(p);
    return new IotlbGather(core, p);
  }

  /** First IOVA gathered, or -1 when empty. */
  get start(): number {
    return this.core.x.gatherStart(this.ptr);
  }

  /** Last IOVA gathered (inclusive), or -1 when empty. */
  get end(): number {
    return this.core.x.gatherEnd(this.ptr);
  }

  /** Whether nothing has been gathered. */
  get empty(): boolean {
    return this.start < 0;
  }

  /**
   * Frees the table pages queued on the gather and re-initialises it. Call only after the
   * IOTLB for the gathered range has been invalidated (iommu_iotlb_sync does both).
   */
  release(): void {
    this.core.x.gatherRelease(this.ptr);
  }

  /** Returns the struct to the heap (releasing queued pages first). */
  dispose(): void {
    this.release();
    this.core.free(this.ptr);
  }
}

/**
 * Where dirty walks record: a bitmap window in linear memory. Bit
 * ((iova - base) >> pgshift) + bitOffset is set for a dirty leaf at iova, for the whole
 * leaf, exactly like iova_bitmap_set(); bits that would land at or past `capBits` are
 * kept as a spill (iova_bitmap's set_ahead) for the next window.
 */
export class DirtyTarget {
  /** Linear-memory address of the struct. */
  readonly ptr: number;

  private constructor(readonly core: WasmCore, ptr: number) {
    this.ptr = ptr;
  }

  /** Allocates an unconfigured target, or null on ENOMEM. */
  static create(core: WasmCore): DirtyTarget | null {
    const p = core.alloc(TARGET_BYTES);
    return p === 0 ? null : new DirtyTarget(core, p);
  }

  /**
   * Points the target at `capBits` bits starting at linear address `bitmapPtr`; bit
   * `bitOffset` stands for IOVA `base`, each bit for `pageSize` bytes (a power of two).
   */
  setWindow(bitmapPtr: number, base: number, pageSize: number, bitOffset: number, capBits: number): void {
    const pgshift = Math.log2(pageSize) | 0;
    this.core.x.targetSet(this.ptr, bitmapPtr, pgshift, base, bitOffset, capBits);
  }

  /** setWindow with the page size given as its shift (any page_size: its lowest set bit). */
  setWindowShift(bitmapPtr: number, base: number, pgshift: number, bitOffset: number, capBits: number): void {
    this.core.x.targetSet(this.ptr, bitmapPtr, pgshift, base, bitOffset, capBits);
  }

  /** Points the target at a whole `Bitmap`: bit i = IOVA base + i*pageSize. */
  setBitmap(bitmap: Bitmap, base: number, pageSize: number): void {
    this.setWindow(bitmap.ptr, base, pageSize, 0, bitmap.nbits);
  }

  /** First IOVA recorded past the window, or -1. */
  get spillStart(): number {
    return this.core.x.targetSpillStart(this.ptr);
  }

  /** End (exclusive) of the IOVA range recorded past the window. */
  get spillEnd(): number {
    return this.core.x.targetSpillEnd(this.ptr);
  }

  /** Records [iova, iova+len) as dirty (the set-ahead step of iova_bitmap). */
  record(iova: number, len: number): void {
    this.core.x.targetRecord(this.ptr, iova, len);
  }

  /** Returns the struct to the heap. */
  dispose(): void {
    this.core.free(this.ptr);
  }
}

/** How to build a page table. */
export interface PageTableOptions {
  /** PTE format. */
  format: PtFormat;
  /** Supported leaf sizes (powers of two); default per format (see defaultPgsizes). */
  pgsizeBitmap?: number;
  /** Starting depth (AMD grows on demand up to `maxLevels`). */
  levels?: number;
  /** AMD only: deepest the table may grow (default 6). */
  maxLevels?: number;
  /** log2 of the smallest item: 12, or 11 for the iommufd selftest mock (AMD v1 only). */
  granuleShift?: number;
  /** ARM: HTTU hardware dirty (writable maps get DBM and start writable-dirty). */
  hardwareDirty?: boolean;
}

/** What the walk found for one IOVA (ptLookup / device walk). */
export interface LeafInfo {
  /** Physical address the IOVA translates to. */
  phys: number;
  /** IOVA where the leaf starts. */
  leafIova: number;
  /** Leaf size in bytes. */
  leafSize: number;
  /** Level of the leaf (0 = granule). */
  level: number;
  /** Linear-memory address of the PTE covering the IOVA (the addressed replica). */
  ptePtr: number;
  /** The raw PTE, split in halves. */
  pteLo: number;
  /** High 32 bits of the raw PTE. */
  pteHi: number;
  /** Writes may currently go through. */
  writable: boolean;
}

/** One I/O page table in Wasm memory. Call `destroy()` to give its pages back. */
export class IoPageTable {
  /** Header address in linear memory. */
  readonly ptr: number;
  /** Smallest supported leaf size. */
  readonly minPageSize: number;

  private constructor(
    readonly core: WasmCore,
    readonly format: PtFormat,
    readonly pgsizeBitmap: number,
    readonly granuleShift: number,
    ptr: number,
  ) {
    this.ptr = ptr;
    this.minPageSize = lowestBit(pgsizeBitmap);
  }

  /** Builds an empty table (root allocated); null on ENOMEM or invalid options. */
  static create(core: WasmCore, opts: PageTableOptions): IoPageTable | null {
    const gs = opts.granuleShift ?? 12;
    if (gs !== 12 && !(gs === 11 && opts.format === "amd-v1")) return null;
    const pgsizes = opts.pgsizeBitmap ?? defaultPgsizes(opts.format);
    if (!Number.isSafeInteger(pgsizes) || pgsizes <= 0 || pgsizes % 2 ** gs !== 0) return null;
    const levels = opts.levels ?? defaultLevels(opts.format);
    const maxLevels = opts.format === "amd-v1" ? opts.maxLevels ?? 6 : levels;
    if (levels < 2 || levels > 6 || maxLevels < levels) return null;
    const flags = opts.hardwareDirty && opts.format === "arm-lpae-s1" ? PT_FLAG_HD : 0;
    let ptr: number;
    try {
      ptr = core.x.ptCreate(formatCode(opts.format), levels, maxLevels, gs, flags, pgsizes % 2 ** 32, Math.floor(pgsizes / 2 ** 32));
    } catch {
      return null;
    }
    return ptr === 0 ? null : new IoPageTable(core, opts.format, pgsizes, gs, ptr);
  }

  /**
   * Devices in other threads write through this table (a shared core): harvests then
   * read-and-clear each PTE with one atomic RMW (test_and_clear_bit) instead of the v128
   * load/store pass, which would overwrite a D bit set between its load and its store, and
   * write-protect replaces each PTE with a compare-exchange.
   * Setting it on a table whose core is not shared is refused (false is returned).
   */
  setConcurrentDevices(on: boolean): boolean {
    if (on && !this.core.atomics) return false;
    this.concurrent = on;
    return true;
  }

  /** Whether harvests use the atomic per-PTE path (see setConcurrentDevices). */
  get concurrentDevices(): boolean {
    return this.concurrent;
  }

  private concurrent = false;

  /** Current depth in levels. */
  get levels(): number {
    return this.core.x.ptLevels(this.ptr);
  }

  /** Table pages this table owns (root included). */
  get tablePages(): number {
    return this.core.x.ptTables(this.ptr);
  }

  /** Sets the hardware A/D tracking flag (AMD DTE.HAD / Intel SSADE); ARM keeps HD. */
  setTracking(on: boolean): void {
    this.core.x.ptSetFlags(this.ptr, (on ? PT_FLAG_TRACK : 0) | this.hdFlag());
  }

  private hdFlag(): number {
    // The flags word lives at header offset 12.
    return this.core.dv.getUint32(this.ptr + 12, true) & PT_FLAG_HD;
  }

  /** Whether the hardware currently sets A/D bits (always true for ARM with HD). */
  get tracking(): boolean {
    const f = this.core.dv.getUint32(this.ptr + 12, true);
    return this.format === "arm-lpae-s1" ? (f & PT_FLAG_HD) !== 0 : (f & PT_FLAG_TRACK) !== 0;
  }

  /**
   * iommu_map(): maps [iova, iova+size) → [pa, pa+size) with the largest leaves that fit.
   * 0, or -EINVAL (misaligned, out of range, no prot), -EEXIST (already mapped),
   * -ENOMEM; on failure nothing stays mapped (freed tables wait on `gather`).
   */
  map(iova: number, pa: number, size: number, prot: number, gather: IotlbGather): number {
    if (!isAddr(iova) || !isAddr(pa) || !isAddr(size) || iova + size > MAX_ADDR || pa + size > MAX_ADDR) return -Errno.EINVAL;
    if (size === 0) return 0;
    let r: number;
    try {
      r = this.core.x.ptMap(this.ptr, iova, pa, size, prot, gather.ptr);
    } catch {
      return -Errno.ENOMEM;
    }
    return r === -Errno.ERANGE ? -Errno.EINVAL : r;
  }

  /**
   * Unmaps whole leaves from `iova` until `size` bytes are gone or a hole is hit; returns
   * the bytes unmapped (may exceed `size` when a larger leaf is cut). With `dirty`, the
   * RFC's unmap_read_dirty: leaves are reported to it before they are cleared. Gathers the
   * IOTLB range; the caller syncs.
   */
  unmap(iova: number, size: number, gather: IotlbGather, dirty: DirtyTarget | null = null): number {
    if (!isAddr(iova) || !isAddr(size) || iova + size > MAX_ADDR) return 0;
    return this.core.x.ptUnmap(this.ptr, iova, size, gather.ptr, dirty ? dirty.ptr : 0);
  }

  /** iova_to_phys(): the physical address, or -1 when unmapped. */
  iovaToPhys(iova: number): number {
    if (!isAddr(iova)) return -1;
    return this.core.x.ptIovaToPhys(this.ptr, iova);
  }

  /** The leaf covering `iova`, or null. */
  lookup(iova: number): LeafInfo | null {
    if (!isAddr(iova) || this.core.x.ptLookup(this.ptr, iova) === 0) return null;
    return this.outInfo();
  }

  /** Reads the walk result the last lookup / device access left in the header. */
  outInfo(): LeafInfo {
    const x = this.core.x;
    const pte = x.ptOutPte(this.ptr);
    return {
      phys: x.ptOutPhys(this.ptr),
      leafIova: x.ptOutLeafIova(this.ptr),
      leafSize: x.ptOutLeafSize(this.ptr),
      level: x.ptOutLevel(this.ptr),
      ptePtr: pte,
      pteLo: x.pteLo(pte) >>> 0,
      pteHi: x.pteHi(pte) >>> 0,
      writable: x.ptOutWritable(this.ptr) !== 0,
    };
  }

  /**
   * read_and_clear_dirty() (driver level, no "tracking disabled" check: the domain does
   * that): records dirty leaves in [iova, iova+size) into `target` (may be null: clear
   * only) and clears them unless `flags` has IOMMU_DIRTY_NO_CLEAR; cleared leaves are
   * gathered. 0, or -EINVAL (ARM: a hole in the range).
   */
  readAndClearDirty(iova: number, size: number, flags: number, target: DirtyTarget | null, gather: IotlbGather): number {
    if (!isAddr(iova) || !isAddr(size) || iova + size > MAX_ADDR) return -Errno.EINVAL;
    const atomics = this.concurrent ? this.core.atomics : null;
    if (atomics) return atomics.ptReadDirtyAtomic(this.ptr, iova, size, flags >>> 0, target ? target.ptr : 0, gather.ptr);
    return this.core.x.ptReadDirty(this.ptr, iova, size, flags >>> 0, target ? target.ptr : 0, gather.ptr);
  }

  /**
   * Write-protects every leaf in range, recording (into `target`) and clearing the dirty
   * state it had; gathers the range. The first step of the race-free unmap sequence.
   */
  writeProtect(iova: number, size: number, target: DirtyTarget | null, gather: IotlbGather): number {
    if (!isAddr(iova) || !isAddr(size) || iova + size > MAX_ADDR) return -Errno.EINVAL;
    const atomics = this.concurrent ? this.core.atomics : null;
    if (atomics) return atomics.ptWriteProtectAtomic(this.ptr, iova, size, target ? target.ptr : 0, gather.ptr);
    return this.core.x.ptWriteProtect(this.ptr, iova, size, target ? target.ptr : 0, gather.ptr);
  }

  /** Marks the leaf PTE covering `iova` dirty (the selftest's set_dirty). 0 or -ENOENT. */
  setDirty(iova: number): number {
    if (!isAddr(iova)) return -Errno.ENOENT;
    return this.core.x.ptSetDirty(this.ptr, iova);
  }

  /**
   * The hardware walk of a DMA access; 0 ok (then `outInfo()` describes the leaf), 1 no
   * translation, 2 permission fault.
   */
  deviceAccess(iova: number, write: boolean): number {
    if (!isAddr(iova)) return 1;
    return this.core.x.ptDeviceAccess(this.ptr, iova, write ? 1 : 0);
  }

  /** Whether, after the last deviceAccess, later writes through the cached entry skip the PTE. */
  outNoUpdate(): boolean {
    return this.core.x.ptOutNoUpdate(this.ptr) !== 0;
  }

  /** The hardware's dirty update through a cached clean entry: 0 ok, 1 PTE gone (lost), 2 fault. */
  deviceDirtyUpdate(ptePtr: number): number {
    return this.core.x.ptDeviceDirtyUpdate(this.ptr, ptePtr);
  }

  /** Frees every table page; no device may still hold an IOTLB entry into it. */
  destroy(): void {
    this.core.x.ptDestroy(this.ptr);
  }
}

function lowestBit(x: number): number {
  for (let b = 0; b < 53; b++) if (Math.floor(x / 2 ** b) % 2 === 1) return 2 ** b;
  return 0;
}
