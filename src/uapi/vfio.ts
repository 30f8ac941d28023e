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

// ---- The VFIO device fd (issue 12): device info, device features, migration uAPI v2 ----

/** Ioctl numbers of the device file (and one of its migration data_fd). */
export const VFIO_GROUP_GET_DEVICE_FD = _IO(VFIO_TYPE, VFIO_BASE + 6);
export const VFIO_DEVICE_GET_INFO = _IO(VFIO_TYPE, VFIO_BASE + 7);
export const VFIO_DEVICE_RESET = _IO(VFIO_TYPE, VFIO_BASE + 11);
export const VFIO_DEVICE_FEATURE = _IO(VFIO_TYPE, VFIO_BASE + 17);
export const VFIO_DEVICE_BIND_IOMMUFD = _IO(VFIO_TYPE, VFIO_BASE + 18);
export const VFIO_DEVICE_ATTACH_IOMMUFD_PT = _IO(VFIO_TYPE, VFIO_BASE + 19);
export const VFIO_DEVICE_DETACH_IOMMUFD_PT = _IO(VFIO_TYPE, VFIO_BASE + 20);
/** On the data_fd of a saving arc (Linux 6.2+). */
export const VFIO_MIG_GET_PRECOPY_INFO = _IO(VFIO_TYPE, VFIO_BASE + 21);

/** vfio_device_info.flags */
export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;
export const VFIO_DEVICE_FLAGS_PLATFORM = 1 << 2;
export const VFIO_DEVICE_FLAGS_AMBA = 1 << 3;
export const VFIO_DEVICE_FLAGS_CCW = 1 << 4;
export const VFIO_DEVICE_FLAGS_AP = 1 << 5;
export const VFIO_DEVICE_FLAGS_FSL_MC = 1 << 6;
export const VFIO_DEVICE_FLAGS_CAPS = 1 << 7;
export const VFIO_DEVICE_FLAGS_CDX = 1 << 8;

/** VFIO_PCI_NUM_REGIONS and VFIO_PCI_NUM_IRQS (vfio-pci's region/irq index enums). */
export const VFIO_PCI_NUM_REGIONS = 9;
export const VFIO_PCI_NUM_IRQS = 5;

/** struct vfio_device_info: 24 bytes (minsz = offsetofend(num_irqs) = 16). */
export const DeviceInfo = { argsz: 0, flags: 4, num_regions: 8, num_irqs: 12, cap_offset: 16, pad: 20, SIZE: 24, MINSZ: 16 } as const;

/** struct vfio_device_feature: argsz, flags, then data[] (minsz = 8). */
export const DeviceFeature = { argsz: 0, flags: 4, data: 8, MINSZ: 8 } as const;

/** vfio_device_feature.flags: the feature number and the operation bits. */
export const VFIO_DEVICE_FEATURE_MASK = 0xffff;
export const VFIO_DEVICE_FEATURE_GET = 1 << 16;
export const VFIO_DEVICE_FEATURE_SET = 1 << 17;
export const VFIO_DEVICE_FEATURE_PROBE = 1 << 18;

/** Feature numbers (the low 16 bits of vfio_device_feature.flags). */
export const VFIO_DEVICE_FEATURE_PCI_VF_TOKEN = 0;
export const VFIO_DEVICE_FEATURE_MIGRATION = 1;
export const VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE = 2;
export const VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY = 3;
export const VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP = 4;
export const VFIO_DEVICE_FEATURE_LOW_POWER_EXIT = 5;
export const VFIO_DEVICE_FEATURE_DMA_LOGGING_START = 6;
export const VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP = 7;
export const VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT = 8;
/** Linux 6.2+. */
export const VFIO_DEVICE_FEATURE_MIG_DATA_SIZE = 9;

/** struct vfio_device_feature_migration: one u64 of flags. */
export const FeatureMigration = { flags: 0, SIZE: 8 } as const;
export const VFIO_MIGRATION_STOP_COPY = 1 << 0;
export const VFIO_MIGRATION_P2P = 1 << 1;
/** Linux 6.2+. */
export const VFIO_MIGRATION_PRE_COPY = 1 << 2;

/** struct vfio_device_feature_mig_state: 8 bytes. */
export const MigState = { device_state: 0, data_fd: 4, SIZE: 8 } as const;

/** enum vfio_device_mig_state. PRE_COPY and PRE_COPY_P2P exist from Linux 6.2. */
export const VFIO_DEVICE_STATE_ERROR = 0;
export const VFIO_DEVICE_STATE_STOP = 1;
export const VFIO_DEVICE_STATE_RUNNING = 2;
export const VFIO_DEVICE_STATE_STOP_COPY = 3;
export const VFIO_DEVICE_STATE_RESUMING = 4;
export const VFIO_DEVICE_STATE_RUNNING_P2P = 5;
export const VFIO_DEVICE_STATE_PRE_COPY = 6;
export const VFIO_DEVICE_STATE_PRE_COPY_P2P = 7;
/** The names of the states, indexed by value. */
export const VFIO_DEVICE_STATE_NAMES = ["ERROR", "STOP", "RUNNING", "STOP_COPY", "RESUMING", "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P"] as const;
/** One of enum vfio_device_mig_state's names. */
export type VfioMigStateName = (typeof VFIO_DEVICE_STATE_NAMES)[number];

/** struct vfio_precopy_info: 24 bytes (minsz = offsetofend(dirty_bytes) = 24). */
export const PrecopyInfo = { argsz: 0, flags: 4, initial_bytes: 8, dirty_bytes: 16, SIZE: 24 } as const;

/** struct vfio_device_feature_dma_logging_control: 24 bytes (`ranges` is a user pointer). */
export const DmaLoggingControl = { page_size: 0, num_ranges: 8, reserved: 12, ranges: 16, SIZE: 24 } as const;
/** struct vfio_device_feature_dma_logging_range: 16 bytes. */
export const DmaLoggingRange = { iova: 0, length: 8, SIZE: 16 } as const;
/** struct vfio_device_feature_dma_logging_report: 32 bytes (`bitmap` is a user pointer). */
export const DmaLoggingReport = { iova: 0, length: 8, page_size: 16, bitmap: 24, SIZE: 32 } as const;
/** struct vfio_device_feature_mig_data_size: 8 bytes. */
export const MigDataSize = { stop_copy_length: 0, SIZE: 8 } as const;

/** LOG_MAX_RANGES (vfio_main.c): the ranges of one DMA_LOGGING_START fit a 4 KiB kernel page. */
export const LOG_MAX_RANGES = 4096 / 16;
