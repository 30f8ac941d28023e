/**
 * vfio-sim: an executable, kernel-faithful model of Linux's IOMMU user interfaces.
 * This is the package's public entry point; each subsystem lives in its own folder.
 */
export { WasmCore, compiledCore, DEFAULT_WASM_PATH } from "./wasm/core";
export type { CoreExports } from "./wasm/core";
export { Bitmap, bitmapBytes, pack, PACK_VARIANTS } from "./bitmap";
export type { PackVariant } from "./bitmap";
export { packBytesJs, packU32Js } from "./bitmap/js-pack";
export { Rng } from "./util/random";
export { Errno, errnoName } from "./uapi/errno";
export type { ErrnoName } from "./uapi/errno";
export type { FileOps, UserAccess } from "./process/file";
export {
  IoPageTable, IotlbGather, DirtyTarget, MAX_ADDR, PT_FORMATS, IOMMU_READ, IOMMU_WRITE, IOMMU_DIRTY_NO_CLEAR,
  PTE_BITS, PGSIZES_4K_2M_1G, PGSIZES_AMD_V1, pgsizeRange, defaultPgsizes,
} from "./iommu/pgtable";
export type { PtFormat, PageTableOptions, LeafInfo } from "./iommu/pgtable";
export { PgtableDomain, Iotlb, DmaDevice, DMA_OK, DMA_FAULT_NOT_PRESENT, DMA_FAULT_PERM } from "./iommu/hw";
export type { PgtableDomainOptions, IotlbEntry, IotlbStats, DmaDeviceStats } from "./iommu/hw";
