/**
 * Which backend each device kind uses. This table is the one place that changes when the
 * model's own subsystems replace the stand-ins (standin.ts).
 */
import type { BackendTable } from "./backend";
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
 * and emulated devices; stand-ins for hardware dirty tracking until the page-table and
 * iommufd subsystems land.
 */
export const BACKENDS: BackendTable = {
  type1: (spec, layout, scenario, pinned) => new ModelType1(spec, layout, scenario, pinned),
  emulated: (spec, layout, scenario, pinned) => new ModelType1(spec, layout, scenario, pinned),
  "hw-type1": STAND_IN_BACKENDS["hw-type1"],
  iommufd: STAND_IN_BACKENDS.iommufd,
};
