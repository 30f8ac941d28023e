/**
 * Test helpers: a full snapshot of a container's observable model state, and the
 * invariants that must hold between any two calls.
 */
import { RangeDomain } from "../../src/iommu";
import type { VfioDma, VfioIommu } from "../../src/type1";
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

/**
 * Whether an external pin of `d` holds a page whose reserved-ness differs from the page the
 * IOMMU maps at its iova. Linux charges a page once, whichever pinned it first (replay and
 * MAP skip iovas that have a vfio_pfn; external pins with a domain charge nothing), which
 * is "every non-reserved mapped page once" only while both pin the same kind of page. The
 * page behind a vaddr can change while an external pin holds the old one: on 6.1 a write
 * that splits a huge zero PMD leaves the pin on the huge zero page (charged) while replay
 * maps the small zero page (reserved, not charged); a write to a pinned small zero page
 * does the opposite. From then on the dma's charge depends on the order of pins, and Linux
 * leaves it in locked_vm when the dma goes (fuzz type1 seed 4346).
 */
export function pinsDiverge(d: VfioDma, exactVpfn = false): boolean {
  if (d.pfnList.size === 0 || d.runs.length === 0) return false;
  for (const p of d.pfnList.values()) {
    const off = p.iova - d.iova;
    const run = d.runs.find((r) => off >= r.offset && off < r.offset + BigInt(r.npages) * 4096n);
    if (run && run.reserved !== p.reserved) return true;
    // Before vpfn_pages() (`exactVpfn`: Type1Kernel.vpfnRange off), a vfio_pfn keyed at an
    // unaligned IOVA matches no page: replay or MAP charges its page again when it maps the
    // run after the pin, not when it mapped before.
    if (exactVpfn && run && !p.reserved && p.iova % 4096n !== 0n) return true;
  }
  return false;
}

/** Non-reserved vfio_pfn entries of `d` whose page no run of `d` covers (charged on their own). */
export function pinsOutsideRuns(d: VfioDma): number {
  if (d.pfnList.size === 0) return 0;
  const runs = d.runs;
  let n = 0;
  for (const p of d.pfnList.values()) {
    if (p.reserved) continue;
    const off = p.iova - d.iova;
    if (!runs.some((r) => off >= r.offset && off < r.offset + BigInt(r.npages) * 4096n)) n++;
  }
  return n;
}

/**
 * What a caller that follows a container call by call knows of its past: the dmas seen with
 * pinsDiverge() at some point (their charge is checked only through the sum, and removing
 * them may leave charge behind: leakedLockedVm), and the pages earlier type1 containers of
 * this mm left charged that way.
 */
export interface ChargeHistory {
  diverged: ReadonlySet<VfioDma>;
  leakedBefore: number;
}

/**
 * Returns the list of violated invariants (empty when all hold). Without `history`, no
 * charge left behind by a removed dma is accepted.
 */
export function invariants(iommu: VfioIommu | null, proc: Process, history?: ChargeHistory): string[] {
  const bad: string[] = [];
  if (!iommu) return bad;
  const dmas = iommu.dmaList.toArray();
  for (let i = 1; i < dmas.length; i++) if (dmas[i - 1].iova + dmas[i - 1].size > dmas[i].iova) bad.push(`overlap at ${dmas[i].iova.toString(16)}`);
  if (iommu.dmaAvail + dmas.length !== iommu.opts.dmaEntryLimit) bad.push(`dma_avail ${iommu.dmaAvail} + ${dmas.length} != limit`);
  const charged = dmas.reduce((a, d) => a + d.lockedVm, 0);
  const diverged = history?.diverged;
  const leaked = iommu.leakedLockedVm + (history?.leakedBefore ?? 0);
  if (!history && iommu.leakedLockedVm !== 0) bad.push(`removed dmas left ${iommu.leakedLockedVm} pages charged`);
  if (proc.mm && proc.mm.lockedVm !== charged + leaked) bad.push(`locked_vm ${proc.mm.lockedVm} != sum of dma charges ${charged}${leaked ? ` + ${leaked} left by removed dmas` : ""}`);
  // Independent recount: every non-reserved pinned page of a mapped dma is charged once
  // (a dma whose pins diverged counts its own charge, see pinsDiverge), and so is every
  // non-reserved page an emulated device pinned outside the dma's runs: 6.1's
  // vfio_find_dma() finds a dma for an unaligned iova up to a page below it, and the page
  // pinned there (below dma->vaddr) is charged on its own, which no replay covers.
  const pinned = dmas.reduce((a, d) => a + (diverged?.has(d) || pinsDiverge(d, !iommu.kernel.vpfnRange) ? d.lockedVm : d.runs.filter((r) => !r.reserved).reduce((b, r) => b + r.npages, 0) + pinsOutsideRuns(d)), 0);
  if (iommu.domainList.length > 0 && proc.mm && proc.mm.lockedVm !== pinned + leaked) bad.push(`locked_vm ${proc.mm.lockedVm} != pinned pages ${pinned}${leaked ? ` + ${leaked} left by removed dmas` : ""}`);
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
