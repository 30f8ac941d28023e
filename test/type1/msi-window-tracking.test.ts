/**
 * Regression (issue 11, F15): with the opt-in msiReservedIovaFlag, an MSI window registered
 * while dirty tracking is on gets its dirty bitmap like any mapping made while tracking
 * (vfio_dma_do_map allocates it), so GET_BITMAP and UNMAP with GET_DIRTY_BITMAP over the
 * window work.
 */
import { Type1Handle, createVfioProcess } from "../../src/type1";
import { smmuPlatform } from "../../src/iommu";
import { VFIO_IOMMU_MAP_DMA, DmaMap } from "../../src/uapi/vfio";

const MSI_FLAG = 1 << 2;

function registerMsi(proc: ReturnType<typeof createVfioProcess>, h: Type1Handle, iova: bigint, size: bigint): number {
  const buf = BigInt(proc.mmap(undefined, 4096).ret);
  const s = new DataView(new ArrayBuffer(DmaMap.SIZE));
  s.setUint32(DmaMap.argsz, DmaMap.SIZE, true);
  s.setUint32(DmaMap.flags, MSI_FLAG, true);
  s.setBigUint64(DmaMap.iova, iova, true);
  s.setBigUint64(DmaMap.size, size, true);
  proc.write(buf, new Uint8Array(s.buffer));
  return proc.ioctl(h.fd, VFIO_IOMMU_MAP_DMA, buf).errno;
}

describe("type1 MSI window registered while dirty tracking is on (F15)", () => {
  it("has a dirty bitmap, so GET_BITMAP and UNMAP+GET_DIRTY_BITMAP over it succeed", () => {
    const proc = createVfioProcess(smmuPlatform(), { msiReservedIovaFlag: MSI_FLAG });
    const h = Type1Handle.open(proc);
    if (!h.ok) throw new Error(h.errnoName);
    const t = h.value;
    expect(t.startDirtyTracking().ok).toBe(true);
    expect(registerMsi(proc, t, 0x10000000n, 0x100000n)).toBe(0);
    const dma = t.iommu.dmaList.toArray().find((d) => d.msiReserved)!;
    expect(dma.bitmap).not.toBeNull();
    const bm = BigInt(proc.mmap(undefined, 4096).ret);
    const bitmap = { pgsize: 0x1000n, size: 32n, data: bm };
    expect(t.getDirtyBitmap({ iova: 0x10000000n, size: 0x100000n }, bitmap).ok).toBe(true);
    expect(t.unmapDmaGetDirty({ iova: 0x10000000n, size: 0x100000n }, bitmap)).toEqual({ ok: true, value: { unmapped: 0x100000n } });
    proc.exit();
  });
});
