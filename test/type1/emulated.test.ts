/**
 * The in-kernel interface for emulated devices: vfio_pin_pages/vfio_unpin_pages, the
 * dma_unmap notifier (run with iommu->lock dropped), pinned-page dirty scope and dma_rw.
 */
import { Type1Handle, createVfioProcess, VfioEmulatedDevice } from "../../src/type1";
import { Platform, PlatformGroup, vtdPlatform } from "../../src/iommu";
import { Errno } from "../../src/uapi/errno";
import { VFIO_GROUP_SET_CONTAINER, IOMMU_READ, IOMMU_WRITE } from "../../src/uapi/vfio";
import type { Process } from "../../src/process";
import { invariants } from "./state";

function platform(): Platform {
  const p = vtdPlatform();
  p.groups.push({ id: 7, devices: [{ name: "mdev0", resv: [] }], emulated: true });
  return p;
}

/** Opens a container with the given groups attached (the first one decides the handle). */
function setup(groupIds: number[]): { proc: Process; h: Type1Handle; guest: bigint; groups: PlatformGroup[] } {
  const plat = platform();
  const proc = createVfioProcess(plat);
  const h = Type1Handle.open(proc, { groupId: groupIds[0] });
  if (!h.ok) throw new Error(h.errnoName);
  for (const id of groupIds.slice(1)) {
    const g = proc.open(`/dev/vfio/${id}`).ret;
    const buf = BigInt(proc.mmap(undefined, 4096).ret);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, h.value.fd, true);
    proc.write(buf, b);
    expect(proc.ioctl(g, VFIO_GROUP_SET_CONTAINER, buf).errno).toBe(0);
  }
  const guest = BigInt(proc.mmap(undefined, 16 << 20).ret);
  return { proc, h: h.value, guest, groups: plat.groups };
}

function device(group: PlatformGroup, onUnmap: (iova: bigint, len: bigint) => void = () => {}): VfioEmulatedDevice & { calls: Array<[bigint, bigint]> } {
  const calls: Array<[bigint, bigint]> = [];
  return {
    group,
    calls,
    dmaUnmap(iova, len) {
      calls.push([iova, len]);
      onUnmap(iova, len);
    },
  };
}

describe("emulated-only container (mdev-style)", () => {
  it("does not pin at MAP; pin_pages charges per page; dirty scope is pinned pages", () => {
    const { proc, h, guest, groups } = setup([7]);
    const iommu = h.iommu;
    proc.fill(guest, 0x10000, 1); // real pages, so pinning charges them
    expect(h.mapDma({ iova: 0x100000n, vaddr: guest, size: 0x10000n }).ok).toBe(true);
    expect(proc.vmLckKb()).toBe(0);
    expect(iommu.iovaList).toEqual([]); // no IOMMU domain: no IOVA_RANGE cap
    const dev = device(groups[1]);
    // No registered device: nobody could be told to unpin.
    expect(iommu.pinPages(dev, 0x100000n, 1, IOMMU_READ).ret).toBe(-Errno.EINVAL);
    expect(iommu.registerDevice(dev)).toBe(0);
    expect(iommu.pinPages(dev, 0x100000n, 513, IOMMU_READ).ret).toBe(-Errno.E2BIG);
    expect(iommu.pinPages(dev, 0x200000n, 1, IOMMU_READ).ret).toBe(-Errno.EINVAL);
    const p = iommu.pinPages(dev, 0x102000n, 2, IOMMU_READ | IOMMU_WRITE);
    expect(p.ret).toBe(2);
    expect(p.phys.length).toBe(2);
    expect(proc.vmLckKb()).toBe(8);
    // Re-pinning only takes a reference.
    expect(iommu.pinPages(dev, 0x102000n, 1, IOMMU_READ).ret).toBe(1);
    expect(proc.vmLckKb()).toBe(8);
    // A failure part way unwinds the pages pinned by this call.
    expect(iommu.pinPages(dev, 0x10f000n, 2, IOMMU_READ).ret).toBe(-Errno.EINVAL);
    expect(proc.vmLckKb()).toBe(8);

    expect(h.startDirtyTracking().ok).toBe(true);
    const bm = { pgsize: 0x1000n, size: 8n, data: guest + 0x800000n };
    // Pinned pages are reported on every GET while pinned; nothing else is dirty.
    for (let i = 0; i < 2; i++) {
      proc.fill(bm.data, 8, 0);
      expect(h.getDirtyBitmap({ iova: 0x100000n, size: 0x10000n }, bm).ok).toBe(true);
      expect(proc.read(bm.data, 2)).toEqual(new Uint8Array([0x0c, 0]));
    }
    // dma_rw writes are reported once.
    expect(iommu.dmaRw(proc, 0x108800n, new Uint8Array(0x1000).fill(7), true)).toBe(0);
    expect(proc.read(guest + 0x8800n, 2)).toEqual(new Uint8Array([7, 7]));
    proc.fill(bm.data, 8, 0);
    expect(h.getDirtyBitmap({ iova: 0x100000n, size: 0x10000n }, bm).ok).toBe(true);
    expect(proc.read(bm.data, 2)).toEqual(new Uint8Array([0x0c, 0x03]));
    proc.fill(bm.data, 8, 0);
    expect(h.getDirtyBitmap({ iova: 0x100000n, size: 0x10000n }, bm).ok).toBe(true);
    expect(proc.read(bm.data, 2)).toEqual(new Uint8Array([0x0c, 0]));

    expect(iommu.unpinPages(0x102000n, 2)).toBe(2);
    expect(proc.vmLckKb()).toBe(4); // page 0x102000 still has a reference
    expect(iommu.unpinPages(0x102000n, 1)).toBe(1);
    expect(proc.vmLckKb()).toBe(0);
    expect(invariants(iommu, proc).filter((x) => !x.includes("runs"))).toEqual([]);
  });

  it("VADDR invalidation is refused (EBUSY) while emulated groups exist", () => {
    const { h } = setup([0, 7]);
    expect(h.mapDma({ iova: 0n, vaddr: 0n, size: 0x1000n }).ok).toBe(false); // vaddr 0 is not mapped: EFAULT
    expect(h.invalidateVaddr({ iova: 0n, size: 0x1000n })).toMatchObject({ ok: false, errno: Errno.EBUSY });
  });
});

describe("dma_unmap notifier", () => {
  it("runs with iommu->lock dropped; a device that unpins lets the unmap finish", () => {
    const { proc, h, guest, groups } = setup([0, 7]);
    const iommu = h.iommu;
    expect(h.mapDma({ iova: 0x100000n, vaddr: guest, size: 0x10000n }).ok).toBe(true);
    expect(proc.vmLckKb()).toBe(64);
    const dev = device(groups[1], (iova, len) => {
      expect(iommu.lock.isHeld).toBe(false);
      expect(iommu.unpinPages(iova, Number(len / 4096n))).toBe(Number(len / 4096n));
    });
    expect(iommu.registerDevice(dev)).toBe(0);
    expect(iommu.pinPages(dev, 0x104000n, 3, IOMMU_READ).ret).toBe(3);
    // With an IOMMU domain, the pages are already charged by MAP: no double charge.
    expect(proc.vmLckKb()).toBe(64);
    expect(h.unmapDma({ iova: 0x100000n, size: 0x10000n })).toEqual({ ok: true, value: { unmapped: 0x10000n } });
    expect(dev.calls).toEqual([[0x100000n, 0x10000n]]);
    expect(proc.vmLckKb()).toBe(0);
    expect(iommu.lock.isHeld).toBe(false);
  });

  it("a device that never unpins hits the kernel's BUG_ON after 10 retries", () => {
    const { h, guest, groups } = setup([0, 7]);
    const iommu = h.iommu;
    expect(h.mapDma({ iova: 0n, vaddr: guest, size: 0x1000n }).ok).toBe(true);
    const dev = device(groups[1]);
    iommu.registerDevice(dev);
    expect(iommu.pinPages(dev, 0n, 1, IOMMU_READ).ret).toBe(1);
    expect(() => h.unmapDma({ iova: 0n, size: 0x1000n })).toThrow(/BUG/);
    expect(dev.calls.length).toBe(11);
  });

  it("pin_pages from an IOMMU-backed group's device narrows the dirty scope to pinned pages", () => {
    const { proc, h, guest, groups } = setup([0]);
    const iommu = h.iommu;
    expect(h.mapDma({ iova: 0n, vaddr: guest, size: 0x8000n }).ok).toBe(true);
    expect(h.startDirtyTracking().ok).toBe(true);
    const bm = { pgsize: 0x1000n, size: 8n, data: guest + 0x100000n };
    expect(h.getDirtyBitmap({ iova: 0n, size: 0x8000n }, bm).ok).toBe(true);
    expect(proc.read(bm.data, 1)).toEqual(new Uint8Array([0xff]));
    const dev = device(groups[0]);
    iommu.registerDevice(dev);
    expect(iommu.numNonPinnedGroups).toBe(1);
    expect(iommu.pinPages(dev, 0x2000n, 1, IOMMU_READ).ret).toBe(1);
    expect(iommu.numNonPinnedGroups).toBe(0);
    proc.fill(bm.data, 8, 0);
    expect(h.getDirtyBitmap({ iova: 0n, size: 0x8000n }, bm).ok).toBe(true);
    expect(proc.read(bm.data, 1)).toEqual(new Uint8Array([0x04]));
  });
});
