/**
 * A paging iommu_domain backed by a real page table in Wasm memory, with its IOTLB and
 * the driver's dirty ops (set_dirty_tracking, read_and_clear_dirty). Mirrors the
 * iommu core entry points: iommu_map, iommu_unmap (gather + iommu_iotlb_sync),
 * iommu_unmap_fast, and the 2022 RFC's opt-in iommu_unmap_read_dirty.
 */
import { WasmCore } from "../../wasm/core";
import { Errno } from "../../uapi/errno";
import { IoPageTable, IotlbGather, DirtyTarget, PageTableOptions, PtFormat } from "../pgtable";
import { Iotlb } from "./iotlb";

/** How to build a domain. */
export interface PgtableDomainOptions extends PageTableOptions {
  /**
   * Allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING: the domain has dirty ops. On ARM this
   * also sets the HTTU quirk (writable maps get DBM).
   */
  dirtyTracking?: boolean;
  /** IOTLB capacity in entries (default 64). */
  iotlbEntries?: number;
}

/** A page-table-backed IOMMU domain. Call `destroy()` when done. */
export class PgtableDomain {
  /** The I/O page table. */
  readonly table: IoPageTable;
  /** Cached translations of the devices attached to this domain. */
  readonly iotlb: Iotlb;
  /** domain->dirty_ops != NULL. */
  readonly dirtyOps: boolean;
  private trackingOn = false;
  private readonly scratch: IotlbGather;

  private constructor(readonly core: WasmCore, table: IoPageTable, scratch: IotlbGather, dirtyOps: boolean, iotlbEntries: number) {
    this.table = table;
    this.scratch = scratch;
    this.dirtyOps = dirtyOps;
    this.iotlb = new Iotlb(iotlbEntries);
  }

  /** Builds a domain; null on ENOMEM or invalid options. */
  static create(core: WasmCore, opts: PgtableDomainOptions): PgtableDomain | null {
    const dirty = opts.dirtyTracking === true;
    const table = IoPageTable.create(core, { ...opts, hardwareDirty: dirty && opts.format === "arm-lpae-s1" });
    if (!table) return null;
    const g = IotlbGather.create(core);
    if (!g) {
      table.destroy();
      return null;
    }
    return new PgtableDomain(core, table, g, dirty, opts.iotlbEntries ?? 64);
  }

  /** The PTE format. */
  get format(): PtFormat {
    return this.table.format;
  }

  /** Supported page sizes (domain->pgsize_bitmap). */
  get pgsizeBitmap(): number {
    return this.table.pgsizeBitmap;
  }

  /** Whether the hardware is currently marking dirty PTEs. */
  get dirtyTracking(): boolean {
    return this.format === "arm-lpae-s1" ? this.dirtyOps : this.trackingOn;
  }

  /** A fresh gather for a multi-step operation. Null on ENOMEM. */
  newGather(): IotlbGather | null {
    return IotlbGather.create(this.core);
  }

  /**
   * iommu_iotlb_sync(): invalidates the gathered range in the IOTLB, then frees the table
   * pages the gather held and re-initialises it.
   */
  iotlbSync(gather: IotlbGather): void {
    const s = gather.start;
    if (s >= 0) this.iotlb.invalidateRange(s, gather.end);
    gather.release();
  }

  /** Flushes the whole IOTLB (domain-wide invalidation). */
  flushAll(): void {
    this.iotlb.flushAll();
  }

  /** iommu_map(). 0 or -errno; on failure nothing stays mapped. */
  map(iova: number, pa: number, size: number, prot: number): number {
    const r = this.table.map(iova, pa, size, prot, this.scratch);
    this.iotlbSync(this.scratch);
    return r;
  }

  /** iommu_unmap(): bytes unmapped, IOTLB flushed. */
  unmap(iova: number, size: number): number {
    const n = this.table.unmap(iova, size, this.scratch);
    this.iotlbSync(this.scratch);
    return n;
  }

  /** iommu_unmap_fast(): unmaps into `gather`; the caller must iotlbSync(gather). */
  unmapFast(iova: number, size: number, gather: IotlbGather): number {
    return this.table.unmap(iova, size, gather);
  }

  /**
   * The RFC's iommu_unmap_read_dirty() (opt-in: only when called with a bitmap): reads the
   * dirty state of each leaf as it clears it, then flushes. It cannot see writes that
   * arrive through a cached translation between the clear and the flush.
   */
  unmapReadDirty(iova: number, size: number, dirty: DirtyTarget): number {
    const n = this.unmapReadDirtyFast(iova, size, dirty, this.scratch);
    this.iotlbSync(this.scratch);
    return n;
  }

  /** unmap_read_dirty without the trailing sync (so a test can act inside the window). */
  unmapReadDirtyFast(iova: number, size: number, dirty: DirtyTarget, gather: IotlbGather): number {
    return this.table.unmap(iova, size, gather, dirty);
  }

  /** iova_to_phys(): physical address, or -1. */
  iovaToPhys(iova: number): number {
    return this.table.iovaToPhys(iova);
  }

  /**
   * dirty_ops->set_dirty_tracking(). AMD/Intel toggle DTE.HAD / SSADE and flush the whole
   * IOTLB (cached entries carry the old A/D behaviour); ARM SMMUv3 is a no-op (HTTU is
   * always on for a dirty-tracking domain). -EINVAL without dirty ops.
   */
  setDirtyTracking(enable: boolean): number {
    if (!this.dirtyOps) return -Errno.EINVAL;
    if (this.format === "arm-lpae-s1") return 0;
    if (this.trackingOn === enable) return 0;
    this.trackingOn = enable;
    this.table.setTracking(enable);
    this.flushAll();
    return 0;
  }

  /**
   * dirty_ops->read_and_clear_dirty(). Gen A AMD/Intel (and the selftest mock) refuse a
   * bitmap read while tracking is off (-EINVAL); the clear-only pass (target null) is always
   * allowed. ARM fails on holes (-EINVAL). The caller syncs `gather` unless NO_CLEAR.
   */
  readAndClearDirty(iova: number, size: number, flags: number, target: DirtyTarget | null, gather: IotlbGather): number {
    if (!this.dirtyOps) return -Errno.EOPNOTSUPP;
    if (target && !this.dirtyTracking && this.format !== "arm-lpae-s1") return -Errno.EINVAL;
    return this.table.readAndClearDirty(iova, size, flags, target, gather);
  }

  /** Write-protect and collect dirties (see IoPageTable.writeProtect); the caller syncs. */
  writeProtect(iova: number, size: number, target: DirtyTarget | null, gather: IotlbGather): number {
    return this.table.writeProtect(iova, size, target, gather);
  }

  /**
   * The race-free unmap: write-protect (collecting dirties), flush, read-and-clear what
   * slipped in before the flush, unmap, flush. Every write that reached memory is in
   * `dirty` or faulted. Returns bytes unmapped.
   */
  unmapSafeReadDirty(iova: number, size: number, dirty: DirtyTarget, hook?: (step: "protected" | "flushed" | "read" | "unmapped") => void): number {
    const g = this.scratch;
    this.table.writeProtect(iova, size, dirty, g);
    hook?.("protected");
    this.iotlbSync(g);
    hook?.("flushed");
    this.table.readAndClearDirty(iova, size, 0, dirty, g);
    hook?.("read");
    this.iotlbSync(g);
    const n = this.table.unmap(iova, size, g);
    hook?.("unmapped");
    this.iotlbSync(g);
    return n;
  }

  /** Frees the table and the IOTLB contents. */
  destroy(): void {
    this.iotlb.flushAll();
    this.scratch.dispose();
    this.table.destroy();
  }
}
