/**
 * Locked-memory accounting on the paths traces cannot reach (emulated groups, a second
 * group, closing fds): each test is named after what it guards, and checks the charge
 * (VmLck), the model's own per-dma charge and the WARN counter of an uncharge underflow.
 */
import { Type1Handle, createVfioProcess, VfioEmulatedDevice, Type1Profile } from "../../src/type1";
import { Platform, PlatformGroup, vtdPlatform } from "../../src/iommu";
import { Errno } from "../../src/uapi/errno";
import { VFIO_GROUP_SET_CONTAINER, VFIO_GROUP_UNSET_CONTAINER, IOMMU_READ } from "../../src/uapi/vfio";
import type { Process } from "../../src/process";
import { snapshot } from "./state";

function platform(): Platform {
  const p = vtdPlatform();
  p.groups.push({ id: 7, devices: [{ name: "mdev0", resv: [] }], emulated: true });
  return p;
}

interface World {
  proc: Process;
  h: Type1Handle;
  guest: bigint;
  groups: PlatformGroup[];
  /** GROUP_SET_CONTAINER of another group into the handle's container: the errno. */
  attach(id: number): { fd: number; errno: number };
}

function setup(first: number, profile: Type1Profile = "linux-6.1"): World {
  const plat = platform();
  const proc = createVfioProcess(plat, { profile });
  const h = Type1Handle.open(proc, { groupId: first });
  if (!h.ok) throw new Error(h.errnoName);
  const buf = BigInt(proc.mmap(undefined, 4096).ret);
  const attach = (id: number): { fd: number; errno: number } => {
    const g = proc.open(`/dev/vfio/${id}`).ret;
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, h.value.fd, true);
    proc.write(buf, b);
    return { fd: g, errno: proc.ioctl(g, VFIO_GROUP_SET_CONTAINER, buf).errno };
  };
  const guest = BigInt(proc.mmap(undefined, 16 << 20).ret);
  return { proc, h: h.value, guest, groups: plat.groups, attach };
}

function device(group: PlatformGroup): VfioEmulatedDevice {
  return { group, dmaUnmap() {} };
}

const charged = (w: World): number => w.h.iommu.dmaList.toArray().reduce((a, d) => a + d.lockedVm, 0);

describe("type1 accounting", () => {
  it("F5: a GROUP_SET_CONTAINER whose replay fails unwinds its pins and charge", () => {
    const w = setup(7);
    w.proc.fill(w.guest, 2 << 20, 1);
    expect(w.h.mapDma({ iova: 0n, vaddr: w.guest, size: 2n << 20n }).ok).toBe(true);
    // Runs past the end of the guest's VMA: the replay's pin fails there with EFAULT.
    expect(w.h.mapDma({ iova: 4n << 20n, vaddr: w.guest + (15n << 20n), size: 2n << 20n }).ok).toBe(true);
    expect(w.proc.vmLckKb()).toBe(0);
    const before = snapshot(w.h.iommu, w.proc);
    const failed = w.attach(0);
    expect(failed.errno).toBe(Errno.EFAULT);
    expect(snapshot(w.h.iommu, w.proc)).toEqual(before);
    expect(w.proc.vmLckKb()).toBe(0);
    expect(w.h.iommu.dmaList.toArray().every((d) => !d.iommuMapped && d.runs.length === 0)).toBe(true);
    expect(w.h.unmapDma({ iova: 0n, size: 0n, all: true }).ok).toBe(true);
    expect(w.proc.vmLckKb()).toBe(0);
    expect(w.proc.mm!.underflowWarnings).toBe(0);
    // The same group attaches once the bad mapping is gone.
    w.proc.close(failed.fd);
    expect(w.h.mapDma({ iova: 0n, vaddr: w.guest, size: 2n << 20n }).ok).toBe(true);
    expect(w.attach(0).errno).toBe(0);
    expect(w.proc.vmLckKb()).toBe(2048);
  });

  it("F5: a failing replay leaves the pages emulated devices pinned charged once", () => {
    const w = setup(7);
    w.proc.fill(w.guest, 0x10000, 1);
    expect(w.h.mapDma({ iova: 0n, vaddr: w.guest, size: 0x10000n }).ok).toBe(true);
    expect(w.h.mapDma({ iova: 1n << 20n, vaddr: w.guest + (15n << 20n), size: 2n << 20n }).ok).toBe(true);
    const dev = device(w.groups[1]);
    expect(w.h.iommu.registerDevice(dev)).toBe(0);
    expect(w.h.iommu.pinPages(dev, 0x2000n, 2, IOMMU_READ).ret).toBe(2);
    expect(w.proc.vmLckKb()).toBe(8);
    expect(w.attach(0).errno).toBe(Errno.EFAULT);
    expect(w.proc.vmLckKb()).toBe(8);
    expect(charged(w)).toBe(2);
    expect(w.h.iommu.unpinPages(0x2000n, 2)).toBe(2);
    expect(w.proc.vmLckKb()).toBe(0);
    expect(w.proc.mm!.underflowWarnings).toBe(0);
  });

  it("F6: emulated pins of the zero page neither charge nor uncharge (and neither does their unwind)", () => {
    const w = setup(7);
    // Never written, mapped read-only for the device: a read pin gets the zero page on 6.1.
    expect(w.h.mapDma({ iova: 0n, vaddr: w.guest, size: 0x10000n, write: false }).ok).toBe(true);
    const dev = device(w.groups[1]);
    w.h.iommu.registerDevice(dev);
    expect(w.h.iommu.pinPages(dev, 0n, 4, IOMMU_READ).ret).toBe(4);
    expect(w.proc.vmLckKb()).toBe(0);
    expect(w.h.iommu.unpinPages(0n, 4)).toBe(4);
    expect(w.proc.vmLckKb()).toBe(0);
    expect(charged(w)).toBe(0);
    // A pin that fails part way (page 16 is past the mapping) unwinds the 15 it pinned.
    expect(w.h.iommu.pinPages(dev, 0x1000n, 16, IOMMU_READ).ret).toBe(-Errno.EINVAL);
    expect(w.proc.vmLckKb()).toBe(0);
    expect(charged(w)).toBe(0);
    expect(w.proc.mm!.underflowWarnings).toBe(0);
  });

  it("F6: on 6.12 the same read pins unshare the zero page, so they charge and uncharge", () => {
    const w = setup(7, "linux-6.12");
    expect(w.h.mapDma({ iova: 0n, vaddr: w.guest, size: 0x10000n, write: false }).ok).toBe(true);
    const dev = device(w.groups[1]);
    w.h.iommu.registerDevice(dev);
    expect(w.h.iommu.pinPages(dev, 0n, 4, IOMMU_READ).ret).toBe(4);
    expect(w.proc.vmLckKb()).toBe(16);
    expect(w.h.iommu.unpinPages(0n, 4)).toBe(4);
    expect(w.proc.vmLckKb()).toBe(0);
    expect(w.proc.mm!.underflowWarnings).toBe(0);
  });

  it("F7: detaching the last IOMMU group re-accounts the pages emulated devices still pin", () => {
    const w = setup(7);
    const g0 = w.attach(0);
    expect(g0.errno).toBe(0);
    w.proc.fill(w.guest, 0x10000, 1);
    expect(w.h.mapDma({ iova: 0n, vaddr: w.guest, size: 0x10000n }).ok).toBe(true);
    expect(w.proc.vmLckKb()).toBe(64);
    const dev = device(w.groups[1]);
    w.h.iommu.registerDevice(dev);
    expect(w.h.iommu.pinPages(dev, 0x3000n, 3, IOMMU_READ).ret).toBe(3);
    expect(w.proc.vmLckKb()).toBe(64);
    expect(w.proc.ioctl(g0.fd, VFIO_GROUP_UNSET_CONTAINER, 0n).errno).toBe(0);
    // The IOMMU pins are gone; the 3 device pins stay charged.
    expect(w.proc.vmLckKb()).toBe(12);
    expect(charged(w)).toBe(3);
    expect(w.h.iommu.unpinPages(0x3000n, 3)).toBe(3);
    expect(w.proc.vmLckKb()).toBe(0);
    expect(w.proc.mm!.underflowWarnings).toBe(0);
  });

  it("I2: closing the container fd keeps the container, its mappings and charge while a group holds it", () => {
    const w = setup(0);
    w.proc.fill(w.guest, 0x10000, 1);
    expect(w.h.mapDma({ iova: 0n, vaddr: w.guest, size: 0x10000n }).ok).toBe(true);
    const iommu = w.h.iommu;
    expect(w.proc.close(w.h.fd).errno).toBe(0);
    expect(iommu.dmaList.length).toBe(1);
    expect(w.proc.vmLckKb()).toBe(64);
    // The group's last close drops the last reference: then everything goes.
    expect(w.proc.close(w.h.groupFd).errno).toBe(0);
    expect(iommu.dmaList.length).toBe(0);
    expect(w.proc.vmLckKb()).toBe(0);
  });
});
