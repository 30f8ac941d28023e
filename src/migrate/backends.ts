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
 * The backends `vfio-sim migrate` uses by default: the model's type1 container for plain,
 * emulated and hardware-dirty (`hw-type1`) devices; for `iommufd`, the model's page tables
 * (DMA through the IOTLB and page walk, harvest by read_and_clear_dirty) without the
 * iommufd ioctl layer, which the model does not have yet.
 */
export const BACKENDS: BackendTable = {
  type1: (spec, layout, scenario, pinned) => new ModelType1(spec, layout, scenario, pinned),
  emulated: (spec, layout, scenario, pinned) => new ModelType1(spec, layout, scenario, pinned),
  "hw-type1": (spec, layout, scenario, pinned) => new ModelType1(spec, layout, scenario, pinned),
  iommufd: (spec, layout, scenario) => new ModelPageTable(spec, layout, scenario),
};
