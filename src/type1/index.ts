/**
 * type1: the VFIO type1 IOMMU backend (vfio_iommu_type1.c) and the bits of the VFIO core
 * around it: containers and groups as files, every type1 ioctl with Linux's argument
 * checks, dma_entry_limit, pinning and locked-memory accounting, software dirty tracking
 * with the kernel's bitmap word algorithm, the in-kernel interface for emulated devices
 * (pin/unpin pages, dma_unmap notifier, dma_rw) and the explicit iommu->lock.
 */
export { VfioIommu } from "./vfio-iommu";
export type { VfioDomain, VfioIommuGroup, VfioEmulatedDevice, DmaMapArgs, DmaUnmapArgs, VfioBitmapArgs, PinPagesResult } from "./vfio-iommu";
export { VfioDma } from "./dma";
export type { PinnedRun, VfioPfn } from "./dma";
export { VfioContainer, VfioGroupFile, installVfio, registerGroupDevice, vfioGroupState } from "./container";
export { vfioIommuType1Ioctl, vfioIommuType1CheckExtension } from "./ioctl";
export { updateUserBitmap, reportAndClear } from "./dirty";
export { Mutex, LockingError } from "./lock";
export { mmLockAcct, vfioLockAcctWorkqueue, LOCK_ACCOUNTING_NAMES } from "./lock-acct";
export type { LockAccounting } from "./lock-acct";
export { DEFAULT_TYPE1_OPTIONS, TYPE1_PROFILES, TYPE1_PROFILE_NAMES, type1Kernel } from "./options";
export type { Type1Options, Type1Profile, Type1Kernel } from "./options";
export { Type1Handle, createVfioProcess } from "./api";
export type { KernelResult, MapDmaRequest, UnmapDmaRequest, UserBitmap, Type1Info, OpenType1Options } from "./api";
