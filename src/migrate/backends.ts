/**
 * Which backend each device kind uses. This table is the one place that changes when the
 * model's own subsystems replace the stand-ins (standin.ts).
 */
import type { BackendTable } from "./backend";
import { StandInIommufd, StandInType1 } from "./standin";

/** The backends `vfio-sim migrate` uses by default. */
export const BACKENDS: BackendTable = {
  type1: (spec, layout, scenario, pinned) => new StandInType1(spec, layout, scenario, pinned),
  emulated: (spec, layout, scenario, pinned) => new StandInType1(spec, layout, scenario, pinned),
  "hw-type1": (spec, layout, scenario, pinned) => new StandInType1(spec, layout, scenario, pinned),
  iommufd: (spec, layout, scenario) => new StandInIommufd(spec, layout, scenario),
};
