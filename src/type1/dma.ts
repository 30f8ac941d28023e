/**
 * struct vfio_dma and struct vfio_pfn: one user mapping of a type1 container and the pages
 * emulated devices pinned inside it. State is per mapping and per pinned run, never per page
 * (except vfio_pfn entries, which exist only for pages an emulated device pinned).
 */
import type { Bitmap } from "../bitmap";
import type { MmStruct } from "../process/mm";
import type { Task } from "../process/task";

/** A physically contiguous run pinned by vfio_pin_pages_remote() and mapped into every domain. */
export interface PinnedRun {
  /** Byte offset of the run from dma.iova. */
  offset: bigint;
  /** Synthetic physical address of its first page. */
  phys: bigint;
  /** Pages in the run. */
  npages: number;
  /** A reserved pfn run (the zero page): not charged, not uncharged. */
  reserved: boolean;
}

/** struct vfio_pfn: a page pinned through vfio_pin_pages(). */
export interface VfioPfn {
  iova: bigint;
  phys: bigint;
  refCount: number;
  /** The pfn is reserved (the zero page): put_pfn() unpins nothing and uncharges nothing. */
  reserved: boolean;
}

/** VfioDma.flags bits. */
const IOMMU_MAPPED = 1;
const VADDR_INVALID = 2;
const BITMAP_LOW_CLEAN = 4;
const MSI_RESERVED = 8;
const LOCK_CAP = 16;
const RUN0_RESERVED = 32;

/** No vfio_pfn entries: shared by every dma until an emulated device pins a page in it. */
const NO_PFNS: ReadonlyMap<bigint, VfioPfn> = new Map();

/**
 * struct vfio_dma. A VMM makes tens of thousands of these and each lives long (so the GC
 * copies it), so a dma holds its first run in its own fields (most dmas have one), and
 * makes the array of further runs with the second run and the pfn map with the first
 * vfio_pin_pages() (most dmas never get one).
 */
export class VfioDma {
  private bytes = 0n;
  /** Pages this dma has charged to its mm (6.3+'s dma->locked_vm; kept in every profile). */
  lockedVm = 0;
  /** Dirty bitmap while tracking (1 bit per smallest IOMMU page, plus a spare u64). */
  bitmap: Bitmap | null = null;
  /** The first run (offset 0): its pages (0 = no run) and first pfn (RUN0_RESERVED: whether it is reserved). */
  private run0Npages = 0;
  private run0Phys = 0n;
  /** Runs after the first. */
  private moreRuns: PinnedRun[] | null = null;
  private pfns: Map<bigint, VfioPfn> | null = null;
  /** The boolean fields, one bit each (one field instead of six in every long-lived dma). */
  private flags = 0;

  constructor(
    readonly iova: bigint,
    public vaddr: bigint,
    readonly prot: number,
    public task: Task,
    public mm: MmStruct,
    lockCap: boolean,
  ) {
    if (lockCap) this.flags = LOCK_CAP;
  }

  private flag(bit: number, on: boolean): void {
    this.flags = on ? this.flags | bit : this.flags & ~bit;
  }

  /** Whether the runs are mapped in the domains (dma->iommu_mapped). */
  get iommuMapped(): boolean {
    return (this.flags & IOMMU_MAPPED) !== 0;
  }
  set iommuMapped(v: boolean) {
    this.flag(IOMMU_MAPPED, v);
  }

  /** dma->vaddr_invalid (VFIO_DMA_UNMAP_FLAG_VADDR). */
  get vaddrInvalid(): boolean {
    return (this.flags & VADDR_INVALID) !== 0;
  }
  set vaddrInvalid(v: boolean) {
    this.flag(VADDR_INVALID, v);
  }

  /** Whether bits [0, npages) of `bitmap` are known to be zero (lets GET_BITMAP skip a clear pass). */
  get bitmapLowClean(): boolean {
    return (this.flags & BITMAP_LOW_CLEAN) !== 0;
  }
  set bitmapLowClean(v: boolean) {
    this.flag(BITMAP_LOW_CLEAN, v);
  }

  /** Set for a 2016-RFC MSI window (no memory behind it). */
  get msiReserved(): boolean {
    return (this.flags & MSI_RESERVED) !== 0;
  }
  set msiReserved(v: boolean) {
    this.flag(MSI_RESERVED, v);
  }

  /** dma->lock_cap: the mapping task had CAP_IPC_LOCK. */
  get lockCap(): boolean {
    return (this.flags & LOCK_CAP) !== 0;
  }
  set lockCap(v: boolean) {
    this.flag(LOCK_CAP, v);
  }

  /** Bytes mapped so far (grows while pinning, like the kernel's zero-sized insert). */
  get size(): bigint {
    return this.bytes;
  }

  set size(v: bigint) {
    this.bytes = v;
  }

  /**
   * iova + size (exclusive, not wrapped). Computed when asked, not kept: the dma list's
   * searches compare Number keys and ask for one end per search, and a kept sum was one more
   * long-lived BigInt per dma for the GC to copy.
   */
  get end(): bigint {
    return this.iova + this.bytes;
  }

  /** Runs pinned and mapped for this dma, ascending (a new array of new objects: for inspection). */
  get runs(): readonly PinnedRun[] {
    const out: PinnedRun[] = [];
    for (let i = 0; i < this.runCount; i++) out.push({ offset: this.runOffset(i), phys: this.runPhys(i), npages: this.runNpages(i), reserved: this.runReserved(i) });
    return out;
  }

  /** Replaces the runs (all at once: replay). */
  set runs(runs: readonly PinnedRun[]) {
    this.clearRuns();
    for (const r of runs) this.addRun(r.offset, r.phys, r.npages, r.reserved);
  }

  /** Forgets every run (unmap_unpin). */
  clearRuns(): void {
    this.run0Npages = 0;
    this.run0Phys = 0n;
    this.flag(RUN0_RESERVED, false);
    this.moreRuns = null;
  }

  /** Appends a run (above every run so far; the first one is at offset 0). */
  addRun(offset: bigint, phys: bigint, npages: number, reserved: boolean): void {
    if (this.run0Npages === 0) {
      if (offset !== 0n) throw new Error(`BUG: vfio_dma's first run at offset ${offset}`);
      this.run0Npages = npages;
      this.run0Phys = phys;
      this.flag(RUN0_RESERVED, reserved);
    } else {
      (this.moreRuns ??= []).push({ offset, phys, npages, reserved });
    }
  }

  /** Number of runs. */
  get runCount(): number {
    return this.run0Npages === 0 ? 0 : 1 + (this.moreRuns ? this.moreRuns.length : 0);
  }

  /** Byte offset from iova of run `i` (< runCount). */
  runOffset(i: number): bigint {
    return i === 0 ? 0n : this.moreRuns![i - 1].offset;
  }

  /** First pfn (synthetic physical address) of run `i`. */
  runPhys(i: number): bigint {
    return i === 0 ? this.run0Phys : this.moreRuns![i - 1].phys;
  }

  /** Pages of run `i`. */
  runNpages(i: number): number {
    return i === 0 ? this.run0Npages : this.moreRuns![i - 1].npages;
  }

  /** Whether run `i` is a reserved pfn run. */
  runReserved(i: number): boolean {
    return i === 0 ? (this.flags & RUN0_RESERVED) !== 0 : this.moreRuns![i - 1].reserved;
  }

  /** Pages pinned by emulated devices, by iova (read-only: vfioPfnList() to change it). */
  get pfnList(): ReadonlyMap<bigint, VfioPfn> {
    return this.pfns ?? NO_PFNS;
  }

  /** The pfn map for changes, made on first use. */
  vfioPfnList(): Map<bigint, VfioPfn> {
    return (this.pfns ??= new Map());
  }

  /** Inclusive last iova (valid when size > 0). */
  get last(): bigint {
    return this.iova + this.bytes - 1n;
  }
}
