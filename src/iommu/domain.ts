/**
 * The IOMMU domain contract (struct iommu_domain + its ops, the parts VFIO uses).
 *
 * type1 maps physically contiguous runs into every domain of a container and unmaps them
 * again; dirty tracking in hardware (iommufd's IOMMU_HWPT_GET_DIRTY_BITMAP, AMD/Intel
 * second-stage dirty bits) is an optional extension that page-table domains implement.
 * Addresses and sizes are u64 as bigint; errors are -errno; nothing throws for bad input.
 */

/** An inclusive IOVA range [start, end]. */
export interface IovaRange {
  start: bigint;
  end: bigint;
}

/** Protection bits passed to map (IOMMU_READ | IOMMU_WRITE | IOMMU_CACHE, src/uapi/vfio.ts). */
export type IommuProt = number;

/** Where readAndClearDirty reports dirty IOVA ranges (struct iommu_dirty_bitmap). */
export interface DirtyRecorder {
  /** iommu_dirty_bitmap_record(): [iova, iova + length) was written by DMA. */
  record(iova: bigint, length: bigint): void;
}

/** read_and_clear_dirty flag: report without clearing the hardware dirty bits. */
export const IOMMU_DIRTY_NO_CLEAR = 1 << 0;

/**
 * Optional hardware dirty tracking (struct iommu_dirty_ops). A domain that implements it
 * exposes it as `IommuDomain.dirty`; type1 does not use it (it tracks dirtiness in
 * software), iommufd does.
 */
export interface IommuDirtyOps {
  /** set_dirty_tracking(): start or stop recording dirty bits in the page tables; 0 or -errno. */
  setDirtyTracking(enable: boolean): number;
  /**
   * read_and_clear_dirty(): reports every dirty page of [iova, iova+size) to `into` and,
   * unless `flags & IOMMU_DIRTY_NO_CLEAR`, clears it. Returns 0 or -errno.
   */
  readAndClearDirty(iova: bigint, size: bigint, into: DirtyRecorder, flags: number): number;
  /**
   * Optional fast path: read_and_clear_dirty() straight into a Linux-layout bitmap at
   * `bitmapPtr` in the domain's Wasm linear memory, bit i = [iova + i*pgsize, +pgsize), ORed
   * in; `bitmapPtr` 0 clears without reporting. 0 or -errno.
   */
  readAndClearDirtyBitmap?(iova: bigint, size: bigint, pgsize: bigint, bitmapPtr: number, flags: number): number;
}

/** One IOMMU translation domain. */
export interface IommuDomain {
  /** Supported page sizes (bit n set = 2^n bytes), e.g. 0x40201000 for 4K/2M/1G. */
  readonly pgsizeBitmap: bigint;
  /** domain->geometry: the IOVA range the hardware can translate. */
  readonly aperture: IovaRange;
  /** Whether the domain enforces cache coherency (answers VFIO_DMA_CC_IOMMU). */
  readonly enforceCacheCoherency: boolean;
  /**
   * iommu_map(): maps [iova, iova+size) to [paddr, paddr+size). Both must be aligned to the
   * smallest page size; returns 0, -EINVAL (alignment, outside the aperture), -EEXIST
   * (already mapped) or -ENOMEM. Nothing is mapped on failure. `iovaKey`: Number(iova),
   * when the caller has it (a domain that keys its mappings by Number need not convert again).
   */
  map(iova: bigint, paddr: bigint, size: bigint, prot: IommuProt, iovaKey?: number): number;
  /**
   * iommu_unmap(): unmaps from `iova` up to `size` bytes and returns the bytes unmapped
   * (stops at the first hole).
   */
  unmap(iova: bigint, size: bigint): bigint;
  /** iommu_iova_to_phys(): the physical address `iova` translates to, or null when unmapped. */
  iovaToPhys(iova: bigint): bigint | null;
  /** Hardware dirty tracking, when the domain has it. */
  readonly dirty?: IommuDirtyOps;
  /**
   * iommu_domain_free(): gives back what the domain holds outside the JS heap (page tables
   * in Wasm memory). The domain must not be used afterwards. Optional: JS-only domains
   * have nothing to free.
   */
  destroy?(): void;
}
