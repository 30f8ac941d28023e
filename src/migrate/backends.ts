/**
 * Which backend each device kind uses. This table is the one place that changes when the
 * model's own subsystems replace the stand-ins (standin.ts).
 */
import type { BackendTable } from "./backend";
import { ModelPageTable } from "./model-pgtable";
import { ModelType1 } from "./model-type1";
import { StandInIommufd, StandInType1 } from "./standin";

/** Every kind on a stand-in: fast, and the cross-check for the model-backed table. */
export const STAND_IN_BACKENDS: BackendTable = {
  type1: (spec, layout, scenario, pinned) => new StandInType1(spec, layout, scenario, pinned),
  emulated: (spec, layout, scenario, pinned) => new StandInType1(spec, layout, scenario, pinned),
  "hw-type1": (spec, layout, scenario, pinned) => new StandInType1(spec, layout, scenario, pinned),
  iommufd: (spec, layout, scenario) => new StandInIommufd(spec, layout, scenario),
};

/**
 * The backends `vfio-sim migrate` uses by default: the model's type1 container for plain
 * and emulated devices; the model's page tables (DMA through the IOTLB and page walk,
 * harvest by read_and_clear_dirty) for the hardware dirty-tracking kinds, whose ioctl
 * layers (iommufd HWPT_GET_DIRTY_BITMAP, type1 on dirty-capable domains) are not in the
 * model yet.
 */
export const BACKENDS: BackendTable = {
  type1: (spec, layout, scenario, pinned) => new ModelType1(spec, layout, scenario, pinned),
  emulated: (spec, layout, scenario, pinned) => new ModelType1(spec, layout, scenario, pinned),
  "hw-type1": (spec, layout, scenario) => new ModelPageTable(spec, layout, scenario),
  iommufd: (spec, layout, scenario) => new ModelPageTable(spec, layout, scenario),
};
