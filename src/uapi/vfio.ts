/**
 * The VFIO uAPI (include/uapi/linux/vfio.h) as the model needs it: ioctl numbers, flag
 * bits, extension ids and the byte layouts (LP64) of every argument struct of the type1
 * container. Offsets are in bytes from the start of the struct in user memory.
 */

/** `_IO(type, nr)` on the generic ioctl encoding (x86, arm, riscv): no size or direction bits. */
export function _IO(type: number, nr: number): number {
  return ((type & 0xff) << 8) | (nr & 0xff);
}

/** VFIO_TYPE (';') and VFIO_BASE. */
export const VFIO_TYPE = 0x3b;
export const VFIO_BASE = 100;

/** Ioctl numbers of the container and group files. */
export const VFIO_GET_API_VERSION = _IO(VFIO_TYPE, VFIO_BASE + 0);
export const VFIO_CHECK_EXTENSION = _IO(VFIO_TYPE, VFIO_BASE + 1);
export const VFIO_SET_IOMMU = _IO(VFIO_TYPE, VFIO_BASE + 2);
export const VFIO_GROUP_GET_STATUS = _IO(VFIO_TYPE, VFIO_BASE + 3);
export const VFIO_GROUP_SET_CONTAINER = _IO(VFIO_TYPE, VFIO_BASE + 4);
export const VFIO_GROUP_UNSET_CONTAINER = _IO(VFIO_TYPE, VFIO_BASE + 5);
export const VFIO_IOMMU_GET_INFO = _IO(VFIO_TYPE, VFIO_BASE + 12);
export const VFIO_IOMMU_MAP_DMA = _IO(VFIO_TYPE, VFIO_BASE + 13);
export const VFIO_IOMMU_UNMAP_DMA = _IO(VFIO_TYPE, VFIO_BASE + 14);
export const VFIO_IOMMU_ENABLE = _IO(VFIO_TYPE, VFIO_BASE + 15);
export const VFIO_IOMMU_DISABLE = _IO(VFIO_TYPE, VFIO_BASE + 16);
export const VFIO_IOMMU_DIRTY_PAGES = _IO(VFIO_TYPE, VFIO_BASE + 17);

/** VFIO_API_VERSION, what GET_API_VERSION returns. */
export const VFIO_API_VERSION = 0;

/** Extension ids (CHECK_EXTENSION / SET_IOMMU argument). */
export const VFIO_TYPE1_IOMMU = 1;
export const VFIO_SPAPR_TCE_IOMMU = 2;
export const VFIO_TYPE1v2_IOMMU = 3;
export const VFIO_DMA_CC_IOMMU = 4;
export const VFIO_EEH = 5;
export const VFIO_TYPE1_NESTING_IOMMU = 6;
export const VFIO_SPAPR_TCE_v2_IOMMU = 7;
export const VFIO_NOIOMMU_IOMMU = 8;
export const VFIO_UNMAP_ALL = 9;
export const VFIO_UPDATE_VADDR = 10;

/** vfio_iommu_type1_info.flags */
export const VFIO_IOMMU_INFO_PGSIZES = 1 << 0;
export const VFIO_IOMMU_INFO_CAPS = 1 << 1;

/** Capability ids of GET_INFO. */
export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
export const VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2;
export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;

/** vfio_iommu_type1_dma_map.flags */
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;
export const VFIO_DMA_MAP_FLAG_VADDR = 1 << 2;

/** vfio_iommu_type1_dma_unmap.flags */
export const VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0;
export const VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1;
export const VFIO_DMA_UNMAP_FLAG_VADDR = 1 << 2;

/** vfio_iommu_type1_dirty_bitmap.flags */
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_START = 1 << 0;
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP = 1 << 1;
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP = 1 << 2;

/** In-kernel protection bits (include/linux/iommu.h). */
export const IOMMU_READ = 1 << 0;
export const IOMMU_WRITE = 1 << 1;
export const IOMMU_CACHE = 1 << 2;

/** struct vfio_info_cap_header: 8 bytes. */
export const CapHeader = { id: 0, version: 2, next: 4, SIZE: 8 } as const;

/** struct vfio_iommu_type1_info: 24 bytes on LP64 (minsz = 16, offsetofend(cap_offset) = 20). */
export const Type1Info = { argsz: 0, flags: 4, iova_pgsizes: 8, cap_offset: 16, SIZE: 24, MINSZ: 16, CAPSZ: 20 } as const;

/** struct vfio_iommu_type1_info_cap_iova_range: header, nr_iovas, reserved, ranges of {start, end}. */
export const CapIovaRange = { nr_iovas: 8, reserved: 12, iova_ranges: 16, RANGE_SIZE: 16, HEADER_SIZE: 16 } as const;

/** struct vfio_iommu_type1_info_cap_migration: 32 bytes on LP64. */
export const CapMigration = { flags: 8, pgsize_bitmap: 16, max_dirty_bitmap_size: 24, SIZE: 32 } as const;

/** struct vfio_iommu_type1_info_dma_avail: 12 bytes. */
export const CapDmaAvail = { avail: 8, SIZE: 12 } as const;

/** struct vfio_iommu_type1_dma_map: 32 bytes. */
export const DmaMap = { argsz: 0, flags: 4, vaddr: 8, iova: 16, size: 24, SIZE: 32 } as const;

/** struct vfio_iommu_type1_dma_unmap: 24 bytes, then data[] (a struct vfio_bitmap with GET_DIRTY_BITMAP). */
export const DmaUnmap = { argsz: 0, flags: 4, iova: 8, size: 16, data: 24, SIZE: 24 } as const;

/** struct vfio_bitmap: 24 bytes on LP64 (data is a user pointer). */
export const VfioBitmap = { pgsize: 0, size: 8, data: 16, SIZE: 24 } as const;

/** struct vfio_iommu_type1_dirty_bitmap: 8 bytes, then data[]. */
export const DirtyBitmap = { argsz: 0, flags: 4, data: 8, SIZE: 8 } as const;

/** struct vfio_iommu_type1_dirty_bitmap_get: 40 bytes, at DirtyBitmap.data. */
export const DirtyBitmapGet = { iova: 0, size: 8, bitmap: 16, SIZE: 40 } as const;

/** DIRTY_BITMAP_PAGES_MAX (INT_MAX) and DIRTY_BITMAP_SIZE_MAX (its bytes). */
export const DIRTY_BITMAP_PAGES_MAX = 0x7fffffffn;
export const DIRTY_BITMAP_SIZE_MAX = 0x10000000n;

/** DIRTY_BITMAP_BYTES(n) in u64 arithmetic (ALIGN wraps like the C macro). */
export function dirtyBitmapBytes(npages: bigint): bigint {
  return ((npages + 63n) & ~63n & U64_MASK) / 8n;
}

/** 2^64 - 1: the u64 mask; u64 sums in the model are taken `& U64_MASK` to wrap like C. */
export const U64_MASK = 0xffff_ffff_ffff_ffffn;

/** x86-64 TASK_SIZE_MAX with 4-level paging: the first address user space cannot use. */
export const TASK_SIZE_MAX = 0x7fff_ffff_f000n;

/** access_ok(addr, size) (include/asm-generic/access_ok.h with TASK_SIZE_MAX). */
export function accessOk(addr: bigint, size: bigint): boolean {
  return size <= TASK_SIZE_MAX && addr <= TASK_SIZE_MAX - size;
}

/** __ffs(x): index of the lowest set bit; x must be non-zero (callers check). */
export function ffs64(x: bigint): number {
  let n = 0;
  while (n < 64 && ((x >> BigInt(n)) & 1n) === 0n) n++;
  return n;
}

/** __fls(x): index of the highest set bit; x must be non-zero. */
export function fls64(x: bigint): number {
  let n = 63;
  while (n > 0 && ((x >> BigInt(n)) & 1n) === 0n) n--;
  return n;
}
