/**
 * vfio-sim: an executable, kernel-faithful model of Linux's IOMMU user interfaces.
 * This is the package's public entry point; each subsystem lives in its own folder.
 */
export { WasmCore, isWasmCore, UNSIGNED_RESULTS } from "./wasm/core";
export type { CoreInput } from "./wasm/core";
export { init, loadCore } from "./wasm/load";
export type { CoreSource } from "./wasm/load";
export { compiledCore, setDefaultCoreModule } from "./wasm/module";
export type { WasmModule, WasmMemory, WasmBytes, ResponseLike } from "./wasm/webassembly-types";
export { FaultInjector } from "./wasm/fault";
export type { AllocKind } from "./wasm/fault";
export type { CoreExports } from "./wasm/core";
export { Bitmap, bitmapBytes, pack, PACK_VARIANTS } from "./bitmap";
export type { PackVariant } from "./bitmap";
export { packBytesJs, packU32Js } from "./bitmap/js-pack";
export { Rng } from "./util/random";
export { Errno, errnoName } from "./uapi/errno";
export type { ErrnoName } from "./uapi/errno";
export type { FileOps, UserAccess } from "./process/file";
export {
  IoPageTable, IotlbGather, DirtyTarget, MAX_ADDR, PT_FORMATS, IOMMU_READ, IOMMU_WRITE,
  PTE_BITS, PGSIZES_4K_2M_1G, PGSIZES_AMD_V1, pgsizeRange, defaultPgsizes,
} from "./iommu/pgtable";
export type { PtFormat, PageTableOptions, LeafInfo } from "./iommu/pgtable";
export { PgtableDomain, HwIommuDomain, withHardwareDirty, Iotlb, DmaDevice, DMA_OK, DMA_FAULT_NOT_PRESENT, DMA_FAULT_PERM } from "./iommu/hw";
export type { PgtableDomainOptions, IotlbEntry, IotlbStats, DmaDeviceStats } from "./iommu/hw";
export * as uapi from "./uapi";
export { Process, UserMemory, MmStruct, isTask, RLIM_INFINITY, CAP_IPC_LOCK, PAGE_SIZE, PROT_NONE, PROT_READ, PROT_WRITE, GUP_LINUX_6_1, GUP_LINUX_6_2 } from "./process";
export type { Task, SyscallResult, ProcessOptions, DeviceOpen, Vma, GupBehaviour } from "./process";
export { RangeDomain, IommuResvType, vtdPlatform, smmuPlatform, PLATFORMS, IOMMU_DIRTY_NO_CLEAR } from "./iommu";
export type { IommuDomain, IommuDirtyOps, DirtyRecorder, IovaRange, Platform, PlatformGroup, PlatformDevice, ResvRegion, IommuParams } from "./iommu";
export { VfioIommu, VfioDma, VfioContainer, VfioGroupFile, installVfio, DEFAULT_TYPE1_OPTIONS, TYPE1_PROFILES, TYPE1_PROFILE_NAMES, type1Kernel, Mutex, LockingError } from "./type1";
export type { Type1Options, Type1Profile, Type1Kernel, VfioEmulatedDevice, PinPagesResult } from "./type1";
export { replayTrace, parseTrace, TraceRunner, ARENA_BASE } from "./trace";
export type { ReplayOptions, ReplayStep, TraceLine } from "./trace";
export { IommufdCtx, installIommufd, iommufdUapi } from "./iommufd";
export { runMigration, defaultScenario, validateScenario, PRESETS, DEVICE_KINDS, BACKENDS, GuestLayout, DmaWorkload, renderHtmlReport } from "./migrate";
export type { Scenario, DeviceSpec, DeviceKind, Workload, MigrationResult, RoundResult, MigrationOptions, MigrationObserver } from "./migrate";
export type { DeviceBackend, DirtyHarvester, DmaWriter, HarvestSink, BackendFactory, BackendTable } from "./migrate";
export { VhostIotlb, VHOST_IOTLB_FLAG_RETIRE, VhostVdpa, vhostVdpaOpener, VdpaSimParent, VhostIotlbApi, fileWriter } from "./vhost";
export { LiveUpdateWorld, LiveDevice } from "./vhost";
export { MemfdFile, MAP_SHARED, MAP_PRIVATE } from "./process";
export type { MappedFile } from "./process";
export type { GuestRegion, Vmm, StepResult, LiveUpdateOptions, DeviceWrite, LedgerCheck } from "./vhost";
export type {
  VhostIotlbMap,
  VhostVdpaOptions,
  VhostVma,
  VmaSource,
  VdpaMapFile,
  SetMapCall,
  DmaResult,
  VhostMsgWriter,
  IotlbResult,
  IotlbUpdate,
  IotlbInvalidate,
  IotlbRemap,
  IotlbLookupSource,
} from "./vhost";
export {
  VHOST_SET_OWNER,
  VHOST_NEW_OWNER,
  VHOST_GET_BACKEND_FEATURES,
  VHOST_SET_BACKEND_FEATURES,
  VHOST_VDPA_GET_IOVA_RANGE,
  VHOST_VDPA_GET_AS_NUM,
  VHOST_IOTLB_MSG,
  VHOST_IOTLB_MSG_V2,
  VHOST_MSG_SIZE,
  VhostIotlbType,
  VhostAccess,
  VhostBackendFeature,
  backendFeatureMask,
  encodeVhostMsgV2,
  decodeIotlbMsg,
} from "./uapi/vhost";
export type { VhostIotlbMsg, VhostMsgV2, VhostVdpaIovaRange } from "./uapi/vhost";
export { Type1Handle, createVfioProcess } from "./type1";
export type { KernelResult, MapDmaRequest, UnmapDmaRequest, UserBitmap, Type1Info, OpenType1Options } from "./type1";
