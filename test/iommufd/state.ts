/**
 * Test helpers: a snapshot of an iommufd context's observable model state (objects, areas,
 * reserved/allowed ranges, pins and charges) and the invariants between any two calls.
 */
import { IommufdCtx } from "../../src/iommufd";
import { userLockedPages } from "../../src/iommufd/ioas";
import type { IoasObj } from "../../src/iommufd/ioas";
import type { Process } from "../../src/process";

/** Everything a failed call must leave unchanged. */
export function snapshot(ctx: IommufdCtx | null, proc: Process): unknown {
  const mm = proc.mm;
  const base = { locked: mm?.lockedVm, pinned: mm?.pinnedVm, user: userLockedPages(proc) };
  if (!ctx) return { none: true, ...base };
  const objs = [...ctx.objects.values()].map((o) => {
    switch (o.kind) {
      case "ioas":
        return {
          kind: o.kind,
          id: o.id,
          areas: o.areas.map((a) => ({ iova: a.iova, length: a.length, uaddr: a.uaddr, prot: a.prot, pinned: a.pages?.npinned, filled: a.pages?.filled.has(a) })),
          reserved: o.reserved.map((r) => ({ start: r.start, last: r.last })),
          allowed: o.allowed.map((r) => ({ ...r })),
          align: o.iovaAlignment,
          noLarge: o.disableLargePages,
          hwpts: [...o.hwpts].map((h) => h.id),
        };
      case "hwpt":
        return { kind: o.kind, id: o.id, ioas: o.ioas.id, auto: o.auto, devices: [...o.devices].map((d) => d.id), tracking: o.domain.dirtyTracking };
      case "device":
        return { kind: o.kind, id: o.id, hwpt: o.hwpt?.id ?? 0 };
      case "selftest":
        return { kind: o.kind, id: o.id, idev: o.idev.id };
    }
  });
  return { objs, mode: ctx.accountMode, ...base };
}

/** Broken invariants (empty when all hold). */
export function invariants(ctx: IommufdCtx | null, proc: Process): string[] {
  const bad: string[] = [];
  if (!ctx) return bad;
  let pinned = 0n;
  const pagesSeen = new Set<unknown>();
  for (const o of ctx.objects.values()) {
    if (o.kind !== "ioas") continue;
    const io = o as IoasObj;
    for (let i = 1; i < io.areas.length; i++) if (io.areas[i - 1].iova + io.areas[i - 1].length > io.areas[i].iova) bad.push(`ioas ${io.id}: areas overlap`);
    for (const a of io.areas) {
      if (io.hwpts.size > 0 && a.pages && !a.pages.filled.has(a)) bad.push(`ioas ${io.id}: area ${a.iova} not in the domains`);
      if (io.hwpts.size === 0 && a.pages?.filled.has(a)) bad.push(`ioas ${io.id}: area ${a.iova} pinned without a domain`);
      for (const r of io.reserved) if (r.start <= a.iova + a.length - 1n && a.iova <= r.last) bad.push(`ioas ${io.id}: area ${a.iova} in a reserved range`);
      if (a.pages && !pagesSeen.has(a.pages)) {
        pagesSeen.add(a.pages);
        pinned += a.pages.npinned;
      }
    }
    for (const h of io.hwpts) if (ctx.objects.get(h.id) !== h) bad.push(`ioas ${io.id}: hwpt ${h.id} not an object`);
  }
  // Every pin of this context is counted in VmPin (other contexts of the process may add more).
  if (proc.mm && BigInt(proc.mm.pinnedVm) < pinned) bad.push(`VmPin ${proc.mm.pinnedVm} < pinned ${pinned}`);
  return bad;
}
