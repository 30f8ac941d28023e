import { Type1Handle, createVfioProcess } from "../../src/type1";
import { smmuPlatform, vtdPlatform } from "../../src/iommu";
import { Errno } from "../../src/uapi/errno";
import { invariants } from "./state";

function open(platform = vtdPlatform()) {
  const proc = createVfioProcess(platform);
  const h = Type1Handle.open(proc);
  if (!h.ok) throw new Error(h.errnoName);
  const guest = BigInt(proc.mmap(undefined, 64 << 20).ret);
  return { proc, h: h.value, guest };
}

describe("typed type1 API", () => {
  it("maps, reports info and unmaps with the kernel's answers", () => {
    const { proc, h, guest } = open();
    expect(h.mapDma({ iova: 0x100000n, vaddr: guest, size: 0x200000n })).toEqual({ ok: true, value: undefined });
    expect(proc.vmLckKb()).toBe(2048);
    expect(h.mapDma({ iova: 0x100000n, vaddr: guest, size: 0x1000n })).toMatchObject({ ok: false, errno: Errno.EEXIST, errnoName: "EEXIST" });
    expect(h.mapDma({ iova: 0xfee00000n, vaddr: guest, size: 0x1000n })).toMatchObject({ ok: false, errno: Errno.EINVAL });
    expect(h.mapDma({ iova: 0n, vaddr: guest, size: 0x1000n, read: false, write: false })).toMatchObject({ ok: false, errno: Errno.EINVAL });
    const info = h.getInfo();
    expect(info.ok && info.value).toEqual({
      argsz: 4096,
      flags: 3,
      iovaPgsizes: 0x40201000n,
      migration: { flags: 0, pgsizeBitmap: 0x1000n, maxDirtyBitmapSize: 0x10000000n },
      dmaAvail: 65534,
      iovaRanges: [
        { start: 0n, end: 0xfedfffffn },
        { start: 0xfef00000n, end: 0x7fffffffffn },
      ],
    });
    expect(h.unmapDma({ iova: 0x100000n, size: 0x1000n })).toMatchObject({ ok: false, errno: Errno.EINVAL });
    expect(h.unmapDma({ iova: 0n, size: 0x1000000n })).toEqual({ ok: true, value: { unmapped: 0x200000n } });
    expect(proc.vmLckKb()).toBe(0);
    expect(invariants(h.iommu, proc)).toEqual([]);
  });

  it("reads dirty bitmaps (every mapped page dirty for an IOMMU-backed device)", () => {
    const { proc, h, guest } = open();
    expect(h.mapDma({ iova: 0x3000n, vaddr: guest, size: 0x5000n }).ok).toBe(true);
    const bm = { pgsize: 0x1000n, size: 8n, data: guest + 0x100000n };
    expect(h.getDirtyBitmap({ iova: 0n, size: 0x8000n }, bm)).toMatchObject({ ok: false, errno: Errno.EINVAL });
    expect(h.startDirtyTracking().ok).toBe(true);
    expect(h.getDirtyBitmap({ iova: 0n, size: 0x8000n }, bm).ok).toBe(true);
    expect(proc.read(bm.data, 8)).toEqual(new Uint8Array([0xf8, 0, 0, 0, 0, 0, 0, 0]));
    // unaligned start: the kernel's bisect rule
    expect(h.getDirtyBitmap({ iova: 0x4000n, size: 0x4000n }, bm)).toMatchObject({ ok: false, errno: Errno.EINVAL });
    expect(h.unmapDmaGetDirty({ iova: 0x3000n, size: 0x5000n }, { ...bm, data: guest + 0x200000n })).toEqual({ ok: true, value: { unmapped: 0x5000n } });
    // 5 pages at shift 0, plus the 3 stale bits the earlier shifted GET left above nbits
    // (reference §8.8): Linux reports 0xff here, not 0x1f.
    expect(proc.read(guest + 0x200000n, 8)).toEqual(new Uint8Array([0xff, 0, 0, 0, 0, 0, 0, 0]));
    expect(h.stopDirtyTracking().ok).toBe(true);
  });

  it("supports the VADDR live-update protocol", () => {
    const { proc, h, guest } = open();
    expect(h.mapDma({ iova: 0n, vaddr: guest, size: 0x4000n }).ok).toBe(true);
    expect(h.invalidateVaddr({ iova: 0n, size: 0x4000n })).toEqual({ ok: true, value: { unmapped: 0x4000n } });
    expect(h.invalidateVaddr({ iova: 0n, size: 0x4000n })).toMatchObject({ ok: false, errno: Errno.EINVAL });
    expect(h.updateVaddr({ iova: 0n, vaddr: guest + 0x10000n, size: 0x2000n })).toMatchObject({ ok: false, errno: Errno.EINVAL });
    expect(h.updateVaddr({ iova: 0x8000n, vaddr: guest, size: 0x2000n })).toMatchObject({ ok: false, errno: Errno.ENOENT });
    expect(h.updateVaddr({ iova: 0n, vaddr: guest + 0x10000n, size: 0x4000n }).ok).toBe(true);
    expect(h.iommu.dmaList.at(0)!.vaddr).toBe(guest + 0x10000n);
    expect(proc.vmLckKb()).toBe(16);
  });

  it("builds the SMMU platform's IOVA list around its software MSI window", () => {
    const { h } = open(smmuPlatform());
    const info = h.getInfo();
    expect(info.ok && info.value.iovaRanges).toEqual([
      { start: 0n, end: 0x7ffffffn },
      { start: 0x8100000n, end: (1n << 48n) - 1n },
    ]);
    expect(h.iommu.domainList[0].msiCookie).toBe(0x8000000n);
    expect(h.checkExtension(4)).toBe(1); // the SMMU preset enforces cache coherency
  });

  it("never throws for bad pointers: EFAULT comes back as a value", () => {
    const { proc, h } = open();
    expect(proc.ioctl(h.fd, 0x3b71, 0x10n)).toEqual({ ret: -1, errno: Errno.EFAULT });
    expect(proc.ioctl(h.fd, 0x3b99, 0n)).toEqual({ ret: -1, errno: Errno.ENOTTY });
    expect(h.getDirtyBitmap({ iova: 0n, size: 0x1000n }, { pgsize: 0x1000n, size: 8n, data: 0x10n })).toMatchObject({ ok: false });
  });
});
