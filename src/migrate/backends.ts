/**
 * Which backend each device kind uses. This table is the one place that changes when the
 * model's own subsystems replace the stand-ins (standin.ts).
 */
import type { WasmCore } from "../wasm/core";
import type { BackendTable } from "./backend";
import { ModelIommufd } from "./model-iommufd";
import { ModelMlx5 } from "./model-mlx5";
import { ModelType1 } from "./model-type1";
import { StandInIommufd, StandInType1 } from "./standin";

/** Every kind on a stand-in: fast, and the cross-check for the model-backed table. */
export const STAND_IN_BACKENDS: BackendTable = {
  type1: (spec, layout, scenario, pinned) => new StandInType1(spec, layout, scenario, pinned),
  emulated: (spec, layout, scenario, pinned) => new StandInType1(spec, layout, scenario, pinned),
  "hw-type1": (spec, layout, scenario, pinned) => new StandInType1(spec, layout, scenario, pinned),
  iommufd: (spec, layout, scenario) => new StandInIommufd(spec, layout, scenario),
  // No stand-in: the device and its tracker only exist in the model.
  mlx5: (spec, layout, scenario) => new ModelMlx5(spec, layout, scenario),
};

/**
 * The backends `vfio-sim migrate` uses by default, all through the model's ioctls: its
 * type1 container for plain, emulated and hardware-dirty (`hw-type1`) devices; its iommufd
 * for `iommufd` (IOAS_MAP, a dirty-tracking HWPT, DMA through the IOTLB and page walk,
 * harvest by HWPT_GET_DIRTY_BITMAP); for `mlx5` its VFIO core and mlx5-like driver on top
 * of that iommufd (device DMA logging, device state by the migration uAPI v2).
 */
export const BACKENDS: BackendTable = {
  type1: (spec, layout, scenario, pinned) => new ModelType1(spec, layout, scenario, pinned),
  emulated: (spec, layout, scenario, pinned) => new ModelType1(spec, layout, scenario, pinned),
  "hw-type1": (spec, layout, scenario, pinned) => new ModelType1(spec, layout, scenario, pinned),
  iommufd: (spec, layout, scenario) => new ModelIommufd(spec, layout, scenario),
  mlx5: (spec, layout, scenario) => new ModelMlx5(spec, layout, scenario),
};

/**
 * BACKENDS with every `iommufd` device on the shared core `core` (WasmCore.createShared):
 * those devices can DMA from worker threads (`MigrationOptions.dma`) and are harvested with
 * per-PTE atomics. Other kinds stay single-threaded.
 */
export function concurrentBackends(core: WasmCore): BackendTable {
  return { ...BACKENDS, iommufd: (spec, layout, scenario) => new ModelIommufd(spec, layout, scenario, false, core) };
}
