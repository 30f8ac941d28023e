/**
 * iommufd: /dev/iommu as a FileOps of the simulated process. Owns the object table (IOAS,
 * paging HWPTs backed by Wasm page tables, mock devices), the ioctl ABI, the iova_bitmap
 * windowing of HWPT_GET_DIRTY_BITMAP, and the selftest's IOMMU_TEST_CMD.
 */
import type { Process } from "../process";
import { IommufdCtx } from "./iommufd";
import { argObject } from "../util/args";

export { IommufdCtx } from "./iommufd";
export type { Ucmd } from "./iommufd";
export type { DeviceIommu } from "./ioas";
export * as iommufdUapi from "./uapi";

/** Makes /dev/iommu openable in `proc`; each open is a new context on the process's Wasm core. */
export function installIommufd(proc: Process): void {
  argObject("proc", proc);
  proc.registerDevice("/dev/iommu", () => new IommufdCtx(proc.core));
}
