/**
 * External pins at an unaligned IOVA (fuzz type1 seed 90210). Since 6.0 vfio_pin_pages()
 * takes a starting IOVA and nothing on the container path checks its alignment: type1
 * pins page i at user_iova + i * PAGE_SIZE, finds the dma overlapping [iova, iova + PAGE_SIZE)
 * (so an IOVA below dma->iova can land in it), pins the page holding
 * dma->vaddr + (iova - dma->iova) and keys the vfio_pfn by that IOVA as given. UNMAP then
 * asks the driver to unpin (dma->iova, dma->size) until the dma's pfn_list is empty and
 * BUG_ON()s after 10 retries, so a driver must unpin every pin whose page overlaps the range.
 */
import { Type1Handle, createVfioProcess, VfioEmulatedDevice, type Type1Profile } from "../../src/type1";
import { Platform, vtdPlatform } from "../../src/iommu";
import { IOMMU_READ } from "../../src/uapi/vfio";
import { invariants } from "./state";

const PAGE = 0x1000n;

function platform(): Platform {
  const p = vtdPlatform();
  p.groups.push({ id: 7, devices: [{ name: "mdev0", resv: [] }], emulated: true });
  return p;
}

/** An emulated-only container with [0x10000, +16 KiB) mapped over written pages. */
function world(unpinOverlapping: boolean, profile: Type1Profile = "linux-6.1") {
  const plat = platform();
  const proc = createVfioProcess(plat, { profile });
  const h = Type1Handle.open(proc, { groupId: 7 });
  if (!h.ok) throw new Error(h.errnoName);
  const iommu = h.value.iommu;
  const guest = BigInt(proc.mmap(undefined, 1 << 20).ret);
  proc.fill(guest, 1 << 20, 1); // real pages: each pin charges one
  expect(h.value.mapDma({ iova: 0x10000n, vaddr: guest + 0x10000n, size: 0x4000n }).ok).toBe(true);
  const pins: bigint[] = [];
  const dev: VfioEmulatedDevice = {
    group: plat.groups.find((g) => g.id === 7)!,
    dmaUnmap(iova, len) {
      for (const p of [...pins]) {
        const inRange = unpinOverlapping ? p + PAGE > iova && p < iova + len : p >= iova && p < iova + len;
        if (!inRange) continue;
        iommu.unpinPages(p, 1);
        pins.splice(pins.indexOf(p), 1);
      }
    },
  };
  expect(iommu.registerDevice(dev)).toBe(0);
  return { proc, h: h.value, iommu, dev, pins };
}

describe("vfio_pin_pages() at an unaligned IOVA (fuzz type1 seed 90210)", () => {
  it("pins the pages holding each address, keyed by the IOVA as given, even below the dma start", () => {
    const { proc, iommu, dev, pins } = world(true);
    const aligned = iommu.pinPages(dev, 0x10000n, 1, IOMMU_READ);
    expect(aligned.ret).toBe(1);
    pins.push(0x10000n);
    // Page 0 overlaps the dma by 0x72 bytes: pinned from dma->vaddr - 0xf8e, the page below the mapping.
    const r = iommu.pinPages(dev, 0xf072n, 2, IOMMU_READ);
    expect(r.ret).toBe(2);
    pins.push(0xf072n, 0x10072n);
    // pages[i] is a struct page: page-aligned, and 0x10072 is the page 0x10000 pinned.
    expect(r.phys.map((p) => p % PAGE)).toEqual([0n, 0n]);
    expect(r.phys[1]).toBe(aligned.phys[0]);
    expect(r.phys[0]).toBe(aligned.phys[0] - PAGE);
    const dma = iommu.dmaList.at(0)!;
    expect([...dma.pfnList.keys()].sort((a, b) => (a < b ? -1 : 1))).toEqual([0xf072n, 0x10000n, 0x10072n]);
    // Three vfio_pfns, three charges (no domain), though 0x10000 and 0x10072 are one page.
    expect(proc.mm!.lockedVm).toBe(3);
    expect(dma.lockedVm).toBe(3);
    expect(invariants(iommu, proc)).toEqual([]);
  });

  it("a page pinned below the dma start stays charged on its own when a domain's replay pins the dma (fuzz type1 seed 20261130)", () => {
    const { proc, iommu, dev } = world(true);
    expect(iommu.pinPages(dev, 0xf072n, 1, IOMMU_READ).ret).toBe(1);
    expect(proc.mm!.lockedVm).toBe(1);
    // An IOMMU-backed group joins: vfio_iommu_replay() pins and charges the dma's 4 pages;
    // no vfio_pfn is keyed at any of them, and the page below stays charged: 5 in all.
    expect(iommu.attachGroup(vtdPlatform().groups[0])).toBe(0);
    const dma = iommu.dmaList.at(0)!;
    expect(dma.runs.reduce((a, r) => a + r.npages, 0)).toBe(4);
    expect(proc.mm!.lockedVm).toBe(5);
    expect(dma.lockedVm).toBe(5);
    expect(invariants(iommu, proc)).toEqual([]);
  });

  it("unpinning that page once the domain exists uncharges nothing, and UNMAP leaves it charged (fuzz type1 seed 20261130, later)", () => {
    const { proc, h, iommu, dev, pins } = world(true);
    expect(iommu.pinPages(dev, 0xf072n, 1, IOMMU_READ).ret).toBe(1);
    expect(iommu.attachGroup(vtdPlatform().groups[0])).toBe(0);
    expect(proc.mm!.lockedVm).toBe(5);
    // vfio_iommu_type1_unpin_pages(): do_accounting is list_empty(&iommu->domain_list),
    // false now, so the vfio_pfn goes and its page's charge stays (no run holds that page).
    iommu.unpinPages(0xf072n, 1);
    const dma = iommu.dmaList.at(0)!;
    expect(dma.pfnList.size).toBe(0);
    expect(proc.mm!.lockedVm).toBe(5);
    expect(dma.lockedVm).toBe(5);
    // The recount (runs only) no longer explains locked_vm: this dma's charge depends on the
    // order of calls, which is why the fuzz harness checks such a dma through the sum alone.
    expect(invariants(iommu, proc)).toEqual(["locked_vm 5 != pinned pages 4"]);
    // vfio_remove_dma() uncharges the 4 mapped pages; the page below stays in locked_vm.
    expect(h.unmapDma({ iova: 0n, size: 0n, all: true }).ok).toBe(true);
    expect(pins).toEqual([]);
    expect(proc.mm!.lockedVm).toBe(1);
    expect(iommu.leakedLockedVm).toBe(1);
  });

  it.each([
    ["linux-6.1", 5, 1],
    ["linux-6.12", 5, 1],
    ["mainline", 4, 0],
  ] as const)("%s: replay charges a page pinned at an unaligned IOVA inside the dma %i pages in all, UNMAP leaves %i", (profile, charged, left) => {
    const { proc, h, iommu, dev, pins } = world(true, profile);
    // Two pins inside the dma, no domain: each charges its page.
    expect(iommu.pinPages(dev, 0x10000n, 1, IOMMU_READ).ret).toBe(1);
    expect(iommu.pinPages(dev, 0x11072n, 1, IOMMU_READ).ret).toBe(1);
    pins.push(0x10000n, 0x11072n);
    expect(proc.mm!.lockedVm).toBe(2);
    // vfio_iommu_replay() pins the 4 pages. The aligned vfio_pfn accounts for its page in
    // every kernel; the one keyed at 0x11072 only for vpfn_pages() (mainline): 6.1 and
    // 6.12 look up 0x11000 with the exact-key vfio_find_vpfn() and charge that page again.
    expect(iommu.attachGroup(vtdPlatform().groups[0])).toBe(0);
    expect(proc.mm!.lockedVm).toBe(charged);
    const dma = iommu.dmaList.at(0)!;
    expect(dma.lockedVm).toBe(charged);
    expect(invariants(iommu, proc)).toEqual([]);
    // UNMAP: the driver unpins (a domain exists: nothing uncharged), then the runs' 4 pages go.
    expect(h.unmapDma({ iova: 0n, size: 0n, all: true }).ok).toBe(true);
    expect(pins).toEqual([]);
    expect(proc.mm!.lockedVm).toBe(left);
  });

  it("UNMAP finishes when the driver unpins every pin overlapping the range", () => {
    const { proc, h, iommu, dev, pins } = world(true);
    expect(iommu.pinPages(dev, 0xf072n, 2, IOMMU_READ).ret).toBe(2);
    pins.push(0xf072n, 0x10072n);
    expect(h.unmapDma({ iova: 0n, size: 0n, all: true }).ok).toBe(true);
    expect(pins).toEqual([]);
    expect(iommu.dmaList.length).toBe(0);
    expect(proc.mm!.lockedVm).toBe(0);
    expect(invariants(iommu, proc)).toEqual([]);
  });

  it("a driver that unpins only pins starting in the range leaves one: vfio_dma_do_unmap() BUG()s", () => {
    const { h, iommu, dev, pins } = world(false);
    expect(iommu.pinPages(dev, 0xf072n, 2, IOMMU_READ).ret).toBe(2);
    pins.push(0xf072n, 0x10072n);
    expect(() => h.unmapDma({ iova: 0n, size: 0n, all: true })).toThrow(/BUG: vfio_dma_do_unmap/);
    expect(pins).toEqual([0xf072n]);
  });
});
