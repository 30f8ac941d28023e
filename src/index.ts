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
export { runMigration, defaultScenario, validateScenario, PRESETS, DEVICE_KINDS, BACKENDS, GuestLayout, DmaWorkload, renderHtmlReport } from "./migrate";
export type { Scenario, DeviceSpec, DeviceKind, Workload, MigrationResult, RoundResult, MigrationOptions, MigrationObserver } from "./migrate";
export type { DeviceBackend, DirtyHarvester, DmaWriter, HarvestSink, BackendFactory, BackendTable } from "./migrate";
