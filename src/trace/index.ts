/**
 * trace: the vfio-trace script format (parser with the runner's exact number and word
 * rules) and its replay against the model, printing what the kernel oracle prints.
 */
export { parseTrace, strtoull, sval } from "./parse";
export type { TraceLine } from "./parse";
export { lintTrace } from "./lint";
export type { TraceProblem } from "./lint";
export { replayTrace, TraceRunner, ARENA_BASE } from "./replay";
export type { ReplayOptions, ReplayStep } from "./replay";
export { formatUserBuffer } from "./print";
