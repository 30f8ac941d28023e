/**
 * The profiles where they differ: `linux-6.1` and `linux-6.12` as their recordings show
 * (test/conformance), `mainline` as the later kernel changes listed in TYPE1_PROFILES; the
 * opt-in 2016 MSI_RESERVED_IOVA proposal, and the locking rules.
 */
import { Type1Handle, createVfioProcess, LockingError, TYPE1_PROFILES } from "../../src/type1";
import { smmuPlatform, vtdPlatform } from "../../src/iommu";
import { Errno } from "../../src/uapi/errno";
import { replayTrace } from "../../src/trace";
import { VFIO_IOMMU_MAP_DMA, DmaMap } from "../../src/uapi/vfio";

const script = `case p
map vaddr=+0 iova=0xfffffffffffff000 size=0x2000
unmap iova=0x2000 size=0xfffffffffffff000
map vaddr=+0 iova=0 size=0x1000
dirty flags=1
dirty flags=4 iova=0x2000 size=0xfffffffffffff000 pgsize=0x1000 bitmap_size=8 data=+0x100000
info argsz=100
info argsz=4096
ext id=6
mprotect addr=+0x3ff000 size=0x1000 prot=r
map flags=1 vaddr=+0x200000 iova=0x10000 size=0x1000
locked
`;

describe("profiles", () => {
  const v61 = replayTrace(script, { type1: { profile: "linux-6.1" } });
  const v612 = replayTrace(script, { type1: { profile: "linux-6.12" } });
  const main = replayTrace(script, { type1: { profile: "mainline" } });

  it("linux-6.1 and linux-6.12 differ in capability alignment and in what read-only pins charge", () => {
    for (const out of [v61, v612]) {
      expect(out).toContain("2 map = -1 EINVAL");
      expect(out).toContain("3 unmap = -1 EINVAL");
      expect(out).toContain("6 dirty = -1 EINVAL");
      expect(out).toContain("9 ext = 1 OK");
    }
    // Unpadded (6.1): 116 bytes, IOVA_RANGE at 68; padded (6.6+): 120, at 72.
    expect(v61).toContain("7 info = 0 OK argsz=116 flags=0x3 pgsizes=0x40201000 cap_offset=0");
    expect(v612).toContain("7 info = 0 OK argsz=120 flags=0x3 pgsizes=0x40201000 cap_offset=0");
    expect(v61).toContain("cap3.v1@56[avail=65534] cap1.v1@68");
    expect(v612).toContain("cap3.v1@56[avail=65534] cap1.v1@72");
    // A read-only pin of a never-written page in a 2 MiB block that no single VMA covers:
    // 6.1 pins the small zero page (not charged), 6.12 unshares it into a charged page.
    expect(v61).toContain("12 locked = 0 OK locked_kb=4");
    expect(v612).toContain("12 locked = 0 OK locked_kb=8");
  });

  it("mainline is linux-6.12 plus the listed later changes", () => {
    expect(TYPE1_PROFILES.mainline).toEqual({ ...TYPE1_PROFILES["linux-6.12"], nestingRemoved: true, overflowChecks: true, vpfnRange: true });
    expect(main).toContain("2 map = -1 EOVERFLOW");
    expect(main).toContain("3 unmap = -1 EOVERFLOW");
    expect(main).toContain("6 dirty = -1 EOVERFLOW");
    expect(main).toContain("9 ext = 0 OK");
    const strip = (out: string): string[] => out.split("\n").filter((l) => !/^(2 map|3 unmap|6 dirty|9 ext) /.test(l));
    expect(strip(main)).toEqual(strip(v612));
  });
});

describe("2016 MSI_RESERVED_IOVA proposal (opt-in)", () => {
  function mapRaw(proc: ReturnType<typeof createVfioProcess>, h: Type1Handle, flags: number, iova: bigint, size: bigint): number {
    const buf = BigInt(proc.mmap(undefined, 4096).ret);
    const s = new DataView(new ArrayBuffer(DmaMap.SIZE));
    s.setUint32(DmaMap.argsz, DmaMap.SIZE, true);
    s.setUint32(DmaMap.flags, flags, true);
    s.setBigUint64(DmaMap.iova, iova, true);
    s.setBigUint64(DmaMap.size, size, true);
    proc.write(buf, new Uint8Array(s.buffer));
    return proc.ioctl(h.fd, VFIO_IOMMU_MAP_DMA, buf).errno;
  }

  it("is off by default: bit 2 is VADDR", () => {
    const proc = createVfioProcess(smmuPlatform());
    const h = Type1Handle.open(proc);
    if (!h.ok) throw new Error();
    expect(mapRaw(proc, h.value, 1 << 2, 0x10000000n, 0x100000n)).toBe(Errno.ENOENT);
  });

  it("registers one MSI window on a SW_MSI platform and refuses it where MSIs are hardware", () => {
    const proc = createVfioProcess(smmuPlatform(), { msiReservedIovaFlag: 1 << 2 });
    const h = Type1Handle.open(proc);
    if (!h.ok) throw new Error();
    expect(mapRaw(proc, h.value, 1 << 2, 0x10000000n, 0x100000n)).toBe(0);
    expect(h.value.iommu.domainList[0].msiCookie).toBe(0x10000000n);
    expect(mapRaw(proc, h.value, 1 << 2, 0x20000000n, 0x100000n)).toBe(Errno.EEXIST);
    expect(proc.vmLckKb()).toBe(0);
    expect(h.value.unmapDma({ iova: 0x10000000n, size: 0x100000n })).toEqual({ ok: true, value: { unmapped: 0x100000n } });
    const p2 = createVfioProcess(vtdPlatform(), { msiReservedIovaFlag: 1 << 2 });
    const h2 = Type1Handle.open(p2);
    if (!h2.ok) throw new Error();
    expect(mapRaw(p2, h2.value, 1 << 2, 0x10000000n, 0x100000n)).toBe(Errno.EINVAL);
  });
});

describe("iommu->lock", () => {
  it("operations that need the lock assert it; re-taking it is a self-deadlock", () => {
    const proc = createVfioProcess(vtdPlatform());
    const h = Type1Handle.open(proc);
    if (!h.ok) throw new Error();
    const iommu = h.value.iommu;
    expect(() => iommu.vfioDmaBitmapAllocAll(0x1000n)).toThrow(LockingError);
    iommu.lock.lock();
    expect(() => iommu.dirtyStart()).toThrow(LockingError);
    iommu.lock.unlock();
    expect(iommu.dirtyStart()).toBe(0);
  });
});
