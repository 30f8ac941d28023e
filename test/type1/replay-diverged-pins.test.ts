/**
 * Fuzz finding type1 seed 4346: an emulated device pins pages of a read-only mapping in an
 * emulated-only container, the process then writes elsewhere in the same 2 MiB block, and
 * an IOMMU group attaches (vfio_iommu_replay). On 6.1 the pins took the huge zero page
 * (not reserved: charged, one page each); the write splits its PMD into small zero pages,
 * so replay pins reserved pages and charges nothing (vfio_pin_pages_remote() skips iovas
 * with a vfio_pfn anyway). locked_vm stays 4 while no mapped page is charged, and since
 * external unpins with a domain uncharge nothing and unmapping reserved pages unlocks
 * nothing, Linux leaves those 4 pages in locked_vm when the dma goes (6.1
 * vfio_iommu_type1.c: vfio_pin_page_external, vfio_pin_pages_remote, vfio_unpin_pages_remote,
 * vfio_iommu_unmap_unpin_reaccount, vfio_remove_dma). On 6.12 the read-only long-term pins
 * unshare the zero pages (real pages), both pin the same pages and nothing is left behind.
 */
import { Type1Handle, createVfioProcess, VfioEmulatedDevice, VfioDma, VfioIommu } from "../../src/type1";
import { Platform, vtdPlatform } from "../../src/iommu";
import { VFIO_GROUP_SET_CONTAINER, VFIO_GROUP_UNSET_CONTAINER, IOMMU_READ } from "../../src/uapi/vfio";
import type { Process } from "../../src/process";
import { invariants, pinsDiverge } from "./state";

const HPAGE = 2n << 20n;

function platform(): Platform {
  const p = vtdPlatform();
  p.groups.push({ id: 7, devices: [{ name: "mdev0", resv: [] }], emulated: true });
  return p;
}

/** The seed-4346 world up to the attach, with the per-call checks. */
function world(profile: "linux-6.1" | "linux-6.12") {
  const plat = platform();
  const proc = createVfioProcess(plat, { profile });
  const h = Type1Handle.open(proc, { groupId: 7 });
  if (!h.ok) throw new Error(h.errnoName);
  const iommu: VfioIommu = h.value.iommu;
  // A 2 MiB block one VMA covers: a read fault there maps the huge zero page (THP always).
  const area = BigInt(proc.mmap(undefined, Number(2n * HPAGE)).ret);
  const block = (area + HPAGE - 1n) & ~(HPAGE - 1n);
  const diverged = new Set<VfioDma>();
  /** locked_vm, the dma's own charge and the invariants (with what a call-by-call caller knows). */
  const check = (locked: number, dmaCharge: number | null, leaked: number): void => {
    const dma = iommu.dmaList.at(0);
    if (dma && pinsDiverge(dma)) diverged.add(dma);
    expect(proc.mm!.lockedVm).toBe(locked);
    expect(dma ? dma.lockedVm : null).toBe(dmaCharge);
    expect(iommu.leakedLockedVm).toBe(leaked);
    expect(invariants(iommu, proc, { diverged, leakedBefore: 0 })).toEqual([]);
  };
  const groupFd = (id: number): number => proc.open(`/dev/vfio/${id}`).ret;
  const buf = BigInt(proc.mmap(undefined, 4096).ret);
  const setContainer = (fd: number): void => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, h.value.fd, true);
    proc.write(buf, b);
    expect(proc.ioctl(fd, VFIO_GROUP_SET_CONTAINER, buf).errno).toBe(0);
  };
  const pins: bigint[] = [];
  const dev: VfioEmulatedDevice = {
    group: plat.groups.find((g) => g.id === 7)!,
    dmaUnmap(iova, len) {
      // A well-behaved vendor driver: unpin what it pinned in the range.
      for (const p of pins.splice(0)) if (p >= iova && p < iova + len) iommu.unpinPages(p, 1);
    },
  };
  const vaddr = block + 0x1f0000n; // 13 pages up to 12 KiB before the block's end
  /** The driver unpins its 4 pages itself (not through dma_unmap). */
  const unpinAll = (): void => {
    expect(iommu.unpinPages(0x2000n, 4)).toBe(4);
    pins.length = 0;
  };
  const unmapAll = (): void => {
    expect(h.value.unmapDma({ iova: 0n, size: 0xd000n }).ok).toBe(true);
  };
  return { proc, h: h.value, iommu, block, vaddr, check, groupFd, setContainer, dev, pins, diverged, unpinAll, unmapAll };
}

/** MAP (read-only, nothing written), register, pin 4 pages READ, write into the block, attach group 0. */
function toAttach(profile: "linux-6.1" | "linux-6.12", splitFirst: boolean) {
  const w = world(profile);
  expect(w.h.mapDma({ iova: 0n, vaddr: w.vaddr, size: 0xd000n, read: true, write: false }).ok).toBe(true);
  w.check(0, 0, 0);
  expect(w.iommu.registerDevice(w.dev)).toBe(0);
  expect(w.iommu.pinPages(w.dev, 0x2000n, 4, IOMMU_READ).ret).toBe(4);
  for (let i = 0n; i < 4n; i++) w.pins.push(0x2000n + i * 0x1000n);
  // 6.1: four pages of the huge zero page, charged; 6.12: four fresh pages, charged.
  w.check(4, 4, 0);
  expect([...w.iommu.dmaList.at(0)!.pfnList.values()].map((p) => p.reserved)).toEqual([false, false, false, false]);
  // The process writes the block's last bytes (the fuzz: a GET_BITMAP bitmap zeroed there).
  if (splitFirst) expect(w.proc.fill(w.block + HPAGE - 8n, 8, 0xff).errno).toBe(0);
  w.check(4, 4, 0);
  const g0 = w.groupFd(0);
  w.setContainer(g0);
  return { ...w, g0 };
}

describe("replay after external pins of pages that changed (fuzz type1 seed 4346)", () => {
  it("6.1: the huge zero PMD split before replay: replay maps reserved pages and charges nothing", () => {
    const w = toAttach("linux-6.1", true);
    const dma = w.iommu.dmaList.at(0)!;
    expect(dma.runs.every((r) => r.reserved)).toBe(true);
    expect(pinsDiverge(dma)).toBe(true);
    w.check(4, 4, 0);
    // Unpins with a domain uncharge nothing (do_accounting = no domain).
    w.unpinAll();
    w.check(4, 4, 0);
    // Unmapping reserved pages unlocks nothing: vfio_remove_dma() frees the dma, 4 pages stay charged.
    w.unmapAll();
    w.check(4, null, 4);
  });

  it("6.1: the driver still pins at UNMAP: the notifier unpins (no accounting), 4 pages stay charged", () => {
    const w = toAttach("linux-6.1", true);
    w.check(4, 4, 0);
    w.unmapAll();
    expect(w.pins).toEqual([]);
    w.check(4, null, 4);
  });

  it("6.1: detaching the IOMMU group re-accounts the external pins on top: 8, then 4 left", () => {
    const w = toAttach("linux-6.1", true);
    // vfio_iommu_unmap_unpin_reaccount(): unlocked 0 (reserved runs), locked 4 (vfio_pfns): +4.
    expect(w.proc.ioctl(w.g0, VFIO_GROUP_UNSET_CONTAINER, 0n).errno).toBe(0);
    w.check(8, 8, 0);
    // No domain now: each unpin uncharges its page.
    w.unpinAll();
    w.check(4, 4, 0);
    w.unmapAll();
    w.check(4, null, 4);
  });

  it("6.1 without the write: replay pins the same huge zero pages, charges the 9 others, nothing is left", () => {
    const w = toAttach("linux-6.1", false);
    const dma = w.iommu.dmaList.at(0)!;
    expect(dma.runs.every((r) => !r.reserved)).toBe(true);
    expect(pinsDiverge(dma)).toBe(false);
    w.check(13, 13, 0);
    w.unmapAll();
    w.check(0, null, 0);
    expect(w.diverged.size).toBe(0);
  });

  it("6.12: the pins unshared the zero pages, so the write changes nothing: 13 charged, nothing left", () => {
    const w = toAttach("linux-6.12", true);
    const dma = w.iommu.dmaList.at(0)!;
    expect(dma.runs.every((r) => !r.reserved)).toBe(true);
    w.check(13, 13, 0);
    w.unmapAll();
    w.check(0, null, 0);
    expect(w.diverged.size).toBe(0);
  });
});
