/**
 * Test helpers: a full snapshot of a container's observable model state, and the
 * invariants that must hold between any two calls.
 */
import { RangeDomain } from "../../src/iommu";
import type { VfioIommu } from "../../src/type1";
import type { Process } from "../../src/process";

/** Everything a failed call must leave unchanged (bitmap contents optional). */
export function snapshot(iommu: VfioIommu | null, proc: Process, withBitmaps = true): unknown {
  if (!iommu) return { none: true, locked: proc.mm?.lockedVm };
  const list = iommu.dmaList;
  // Above 2048 mappings (the entry-limit case) keep the ends of the list: a full copy per
  // call would make that trace quadratic. Counts and accounting still cover everything.
  const n = list.length;
  const idx = n > 2048 ? [...Array(64).keys(), ...Array.from({ length: 64 }, (_, i) => n - 64 + i)] : [...Array(n).keys()];
  const dmas = idx.map((i) => list.at(i)!);
  return {
    count: n,
    dmas: dmas.map((d) => ({
      iova: d.iova,
      vaddr: d.vaddr,
      size: d.size,
      prot: d.prot,
      vaddrInvalid: d.vaddrInvalid,
      lockCap: d.lockCap,
      lockedVm: d.lockedVm,
      iommuMapped: d.iommuMapped,
      runs: d.runs.map((r) => ({ ...r })),
      pfns: [...d.pfnList.values()].map((p) => ({ ...p })),
      bitmap: d.bitmap ? (withBitmaps ? Buffer.from(d.bitmap.core.u8.subarray(d.bitmap.ptr, d.bitmap.ptr + d.bitmap.bytes)).toString("hex") : "present") : null,
    })),
    dmaAvail: iommu.dmaAvail,
    vaddrInvalidCount: iommu.vaddrInvalidCount,
    tracking: iommu.dirtyPageTracking,
    pgsizeBitmap: iommu.pgsizeBitmap,
    iovaList: iommu.iovaList.map((r) => ({ ...r })),
    domains: n > 2048 ? iommu.domainList.map((d) => (d.domain instanceof RangeDomain ? d.domain.extentCount : null)) : iommu.domainList.map((d) => (d.domain instanceof RangeDomain ? d.domain.dump() : null)),
    numNonPinnedGroups: iommu.numNonPinnedGroups,
    locked: proc.mm?.lockedVm,
  };
}

/** Returns the list of violated invariants (empty when all hold). */
export function invariants(iommu: VfioIommu | null, proc: Process): string[] {
  const bad: string[] = [];
  if (!iommu) return bad;
  const dmas = iommu.dmaList.toArray();
  for (let i = 1; i < dmas.length; i++) if (dmas[i - 1].iova + dmas[i - 1].size > dmas[i].iova) bad.push(`overlap at ${dmas[i].iova.toString(16)}`);
  if (iommu.dmaAvail + dmas.length !== iommu.opts.dmaEntryLimit) bad.push(`dma_avail ${iommu.dmaAvail} + ${dmas.length} != limit`);
  const charged = dmas.reduce((a, d) => a + d.lockedVm, 0);
  if (proc.mm && proc.mm.lockedVm !== charged) bad.push(`locked_vm ${proc.mm.lockedVm} != sum of dma charges ${charged}`);
  // Independent recount: every non-reserved pinned page of a mapped dma is charged once.
  const pinned = dmas.reduce((a, d) => a + d.runs.filter((r) => !r.reserved).reduce((b, r) => b + r.npages, 0), 0);
  if (iommu.domainList.length > 0 && proc.mm && proc.mm.lockedVm !== pinned) bad.push(`locked_vm ${proc.mm.lockedVm} != pinned pages ${pinned}`);
  for (const d of dmas) {
    if ((d.bitmap !== null) !== iommu.dirtyPageTracking) bad.push(`bitmap of ${d.iova.toString(16)} present=${d.bitmap !== null} tracking=${iommu.dirtyPageTracking}`);
    const runBytes = d.runs.reduce((a, r) => a + BigInt(r.npages) * 4096n, 0n);
    if (iommu.domainList.length > 0 && !d.msiReserved && runBytes !== d.size) bad.push(`runs of ${d.iova.toString(16)} cover ${runBytes} != ${d.size}`);
  }
  if (iommu.vaddrInvalidCount !== dmas.filter((d) => d.vaddrInvalid).length) bad.push("vaddr_invalid_count drift");
  for (const dom of iommu.domainList) {
    if (!(dom.domain instanceof RangeDomain)) continue;
    const mapped = dom.domain.dump().reduce((a, e) => a + e[1], 0n);
    const want = dmas.reduce((a, d) => a + d.runs.reduce((b, r) => b + BigInt(r.npages) * 4096n, 0n), 0n);
    if (mapped !== want) bad.push(`domain maps ${mapped} bytes, dmas pinned ${want}`);
  }
  return bad;
}
