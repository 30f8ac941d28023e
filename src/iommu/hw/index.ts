/**
 * Hardware-backed IOMMU domains: a Wasm page table (src/iommu/pgtable), the per-domain
 * IOTLB with gather/sync, and simulated DMA devices whose writes set dirty bits. This
 * folder owns what the IOMMU hardware and its Linux driver do; ioctl layers (type1,
 * iommufd) sit on top.
 */
export { PgtableDomain } from "./domain";
export type { PgtableDomainOptions } from "./domain";
export { Iotlb } from "./iotlb";
export type { IotlbEntry, IotlbStats } from "./iotlb";
export { DmaDevice, DMA_OK, DMA_FAULT_NOT_PRESENT, DMA_FAULT_PERM } from "./device";
export type { DmaDeviceStats } from "./device";
export { HwIommuDomain, withHardwareDirty } from "./iommu-domain";
export type { HwDirtyBitmapOps } from "./iommu-domain";
