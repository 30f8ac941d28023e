import { Type1Handle, createVfioProcess } from "../../src/type1";
import { vtdPlatform } from "../../src/iommu";
import { Errno } from "../../src/uapi/errno";
import { VFIO_GROUP_UNSET_CONTAINER, VFIO_SET_IOMMU, VFIO_GET_API_VERSION, VFIO_IOMMU_MAP_DMA } from "../../src/uapi/vfio";

describe("container and group life cycle", () => {
  it("needs a group before SET_IOMMU, refuses a second SET_IOMMU, and unset of the last group drops every mapping", () => {
    const proc = createVfioProcess(vtdPlatform());
    const c = proc.open("/dev/vfio/vfio").ret;
    expect(proc.ioctl(c, VFIO_GET_API_VERSION)).toEqual({ ret: 0, errno: 0 });
    expect(proc.ioctl(c, VFIO_SET_IOMMU, 3n).errno).toBe(Errno.EINVAL); // no group yet
    expect(proc.ioctl(c, VFIO_IOMMU_MAP_DMA, 0n).errno).toBe(Errno.EINVAL); // no driver yet
    proc.close(c);
    const h = Type1Handle.open(proc);
    if (!h.ok) throw new Error(h.errnoName);
    expect(proc.open("/dev/vfio/0").errno).toBe(Errno.EBUSY); // the group is open already
    expect(proc.ioctl(h.value.fd, VFIO_SET_IOMMU, 3n).errno).toBe(Errno.EINVAL);
    expect(proc.ioctl(h.value.fd, VFIO_SET_IOMMU, 2n).errno).toBe(Errno.EINVAL);
    const guest = BigInt(proc.mmap(undefined, 1 << 20).ret);
    expect(h.value.mapDma({ iova: 0n, vaddr: guest, size: 0x10000n }).ok).toBe(true);
    expect(proc.vmLckKb()).toBe(64);
    expect(proc.ioctl(h.value.groupFd, VFIO_GROUP_UNSET_CONTAINER).errno).toBe(0);
    expect(proc.vmLckKb()).toBe(0);
    expect(proc.ioctl(h.value.groupFd, VFIO_GROUP_UNSET_CONTAINER).errno).toBe(Errno.EINVAL);
    expect(proc.ioctl(h.value.fd, VFIO_IOMMU_MAP_DMA, 0n).errno).toBe(Errno.EINVAL); // back to unset
  });

  it("dma_entry_limit bounds the number of mappings (ENOSPC) and unmapping gives entries back", () => {
    const proc = createVfioProcess(vtdPlatform(), { dmaEntryLimit: 3 });
    const h = Type1Handle.open(proc);
    if (!h.ok) throw new Error(h.errnoName);
    const guest = BigInt(proc.mmap(undefined, 1 << 20).ret);
    for (let i = 0n; i < 3n; i++) expect(h.value.mapDma({ iova: i * 0x1000n, vaddr: guest, size: 0x1000n }).ok).toBe(true);
    expect(h.value.mapDma({ iova: 0x10000n, vaddr: guest, size: 0x1000n })).toMatchObject({ ok: false, errno: Errno.ENOSPC });
    const info = h.value.getInfo();
    expect(info.ok && info.value.dmaAvail).toBe(0);
    expect(h.value.unmapDma({ iova: 0n, size: 0x1000n }).ok).toBe(true);
    expect(h.value.mapDma({ iova: 0x10000n, vaddr: guest, size: 0x1000n }).ok).toBe(true);
    // Process exit closes the files: the container releases its mappings and charges.
    proc.exit();
    expect(proc.mm).toBeNull();
  });
});
