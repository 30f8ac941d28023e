/**
 * include/uapi/linux/iommufd.h and drivers/iommu/iommufd/iommufd_test.h: ioctl numbers,
 * struct sizes (LP64) and flags, for the commands this model implements.
 */

/** IOMMUFD_TYPE ';': every command is _IO(';', nr) = 0x3B00 | nr. */
export const IOMMUFD_TYPE = 0x3b;

export const IOMMU_DESTROY = 0x3b80;
export const IOMMU_IOAS_ALLOC = 0x3b81;
export const IOMMU_IOAS_ALLOW_IOVAS = 0x3b82;
export const IOMMU_IOAS_COPY = 0x3b83;
export const IOMMU_IOAS_IOVA_RANGES = 0x3b84;
export const IOMMU_IOAS_MAP = 0x3b85;
export const IOMMU_IOAS_UNMAP = 0x3b86;
export const IOMMU_OPTION = 0x3b87;
export const IOMMU_HWPT_ALLOC = 0x3b89;
export const IOMMU_GET_HW_INFO = 0x3b8a;
export const IOMMU_HWPT_SET_DIRTY_TRACKING = 0x3b8b;
export const IOMMU_HWPT_GET_DIRTY_BITMAP = 0x3b8c;
/** Selftest: IOMMU_TEST_CMD = _IO(';', 0x80 + 32). */
export const IOMMU_TEST_CMD = 0x3ba0;

/** IOMMU_IOAS_MAP flags. */
export const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
export const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
export const IOMMU_IOAS_MAP_READABLE = 1 << 2;

/** IOMMU_HWPT_ALLOC flags. */
export const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
export const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;

/** IOMMU_HWPT_SET_DIRTY_TRACKING flags. */
export const IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1;
/** IOMMU_HWPT_GET_DIRTY_BITMAP flags. */
export const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1;
/** struct iommu_hw_info out_capabilities. */
export const IOMMU_HW_CAP_DIRTY_TRACKING = 1;

/** Struct sizes (kernel's sizeof) and minimum sizes (offsetofend of the last mandatory member). */
export const SIZES = {
  destroy: { size: 8, min: 8 },
  ioasAlloc: { size: 12, min: 12 },
  ioasMap: { size: 40, min: 40 },
  ioasUnmap: { size: 24, min: 24 },
  hwptAlloc: { size: 48, min: 24 },
  hwInfo: { size: 40, min: 32 },
  setDirtyTracking: { size: 16, min: 16 },
  getDirtyBitmap: { size: 48, min: 48 },
  testCmd: { size: 72, min: 68 },
  ioasCopy: { size: 40, min: 40 },
  iovaRanges: { size: 32, min: 32 },
  allowIovas: { size: 24, min: 24 },
  option: { size: 24, min: 24 },
} as const;

/** IOMMU_OPTION option ids and ops. */
export const IOMMU_OPTION_RLIMIT_MODE = 0;
export const IOMMU_OPTION_HUGE_PAGES = 1;
export const IOMMU_OPTION_OP_SET = 0;
export const IOMMU_OPTION_OP_GET = 1;

/** VFIO device cdev ioctls (include/uapi/linux/vfio.h, VFIO_BASE 100 on type ';'). */
export const VFIO_DEVICE_GET_INFO = 0x3b6b;
export const VFIO_DEVICE_BIND_IOMMUFD = 0x3b76;
export const VFIO_DEVICE_ATTACH_IOMMUFD_PT = 0x3b77;
export const VFIO_DEVICE_DETACH_IOMMUFD_PT = 0x3b78;
/** Their structs' sizes (argsz minimums are offsetofend of the last field). */
export const VFIO_CDEV_SIZES = { bind: 16, attach: 12, detach: 8, deviceInfo: 24 } as const;

/** Selftest ops (iommufd_test.h). */
export const IOMMU_TEST_OP_ADD_RESERVED = 1;
export const IOMMU_TEST_OP_MOCK_DOMAIN = 2;
export const IOMMU_TEST_OP_MD_CHECK_MAP = 3;
export const IOMMU_TEST_OP_MD_CHECK_REFS = 4;
export const IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE = 10;
export const IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS = 12;
export const IOMMU_TEST_OP_DIRTY = 13;

/** Mock device flags. */
export const MOCK_FLAGS_DEVICE_NO_DIRTY = 1 << 0;
export const MOCK_FLAGS_DEVICE_HUGE_IOVA = 1 << 1;

/** Mock domain geometry (Gen A, 4 KiB host): 2 KiB IO pages, 1 MiB huge pages. */
export const MOCK_APERTURE_START = 1n << 24n;
export const MOCK_APERTURE_LAST = (1n << 31n) - 1n;
export const MOCK_PAGE_SIZE = 2048;
export const MOCK_HUGE_PAGE_SIZE = 512 * MOCK_PAGE_SIZE;

export const U64_MAX = (1n << 64n) - 1n;
