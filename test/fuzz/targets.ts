/** Every fuzz target by name, and the reproducer entry point. */
import type { Finding, Target } from "./engine";
import { fromJson, replayOps, type Op } from "./engine";
import { type1Target } from "./type1";
import { iommufdTarget } from "./iommufd";
import { vhostTarget } from "./vhost";
import { traceTarget } from "./trace";
import { vfioTarget } from "./vfio";

export const TARGETS: Record<string, Target<any>> = {
  type1: type1Target,
  iommufd: iommufdTarget,
  vhost: vhostTarget,
  trace: traceTarget,
  vfio: vfioTarget,
};

/** Replays a reproducer's JSON ({target, cfg, ops}); the finding (kind, call, message) or null. */
export function replayRepro(json: string): (Finding & { call: number }) | null {
  const r = fromJson<{ target: string; cfg: unknown; ops: Op[] }>(json);
  const t = TARGETS[r.target];
  if (!t) throw new Error(`unknown fuzz target ${r.target}`);
  const out = replayOps(t, r.cfg, r.ops);
  return out.finding ? { ...out.finding, call: out.at + 1 } : null;
}
