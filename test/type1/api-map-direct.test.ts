/**
 * Type1Handle.mapDma() hands the fields it stored in its scratch page straight to the
 * container (the kernel's copy_from_user() would read back exactly those), so it must
 * answer, and leave the model, exactly as the raw ioctl does with the same struct in user
 * memory: checked on two identical processes over random requests drawn around every
 * boundary the handler tests (alignment, 2^32, 2^53, 2^64, the IOVA windows, overlap).
 */
import { Type1Handle, createVfioProcess } from "../../src/type1";
import { vtdPlatform } from "../../src/iommu";
import { Errno } from "../../src/uapi/errno";
import { DmaMap, VFIO_IOMMU_MAP_DMA, VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE } from "../../src/uapi/vfio";
import { snapshot } from "./state";

function side() {
  const proc = createVfioProcess(vtdPlatform());
  const h = Type1Handle.open(proc);
  if (!h.ok) throw new Error(h.errnoName);
  const guest = BigInt(proc.mmap(undefined, 16 << 20).ret);
  const arg = BigInt(proc.mmap(undefined, 4096).ret);
  return { proc, h: h.value, guest, arg };
}

/** The raw ioctl with the struct the handle would write. */
function rawMap(s: ReturnType<typeof side>, iova: bigint, vaddr: bigint, size: bigint, read: boolean, write: boolean): number {
  const b = new DataView(new ArrayBuffer(DmaMap.SIZE));
  b.setUint32(DmaMap.argsz, DmaMap.SIZE, true);
  b.setUint32(DmaMap.flags, (read ? VFIO_DMA_MAP_FLAG_READ : 0) | (write ? VFIO_DMA_MAP_FLAG_WRITE : 0), true);
  b.setBigUint64(DmaMap.vaddr, vaddr, true);
  b.setBigUint64(DmaMap.iova, iova, true);
  b.setBigUint64(DmaMap.size, size, true);
  expect(s.proc.write(s.arg, new Uint8Array(b.buffer)).ret).toBe(0);
  const r = s.proc.ioctl(s.h.fd, VFIO_IOMMU_MAP_DMA, s.arg);
  return r.ret < 0 ? -r.errno : r.ret;
}

const typedMap = (s: ReturnType<typeof side>, iova: bigint, vaddr: bigint, size: bigint, read: boolean, write: boolean): number => {
  const r = s.h.mapDma({ iova, vaddr, size, read, write });
  return r.ok ? 0 : -r.errno;
};

function rng(seed: number) {
  let x = seed >>> 0;
  return () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

const M64 = (1n << 64n) - 1n;

describe("Type1Handle.mapDma and the raw MAP_DMA ioctl", () => {
  it.each([1, 2, 3, 4])("answer alike and leave the same state (seed %i)", (seed) => {
    const a = side();
    const b = side();
    expect(a.guest).toBe(b.guest);
    const r = rng(seed);
    const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
    const near = (x: bigint) => [x - 0x1000n, x - 1n, x, x + 1n, x + 0x1000n].map((v) => v & M64);
    const iovas = [0n, 0x1000n, 0x200000n, 0xfee00000n, ...near(1n << 32n), ...near(1n << 53n), ...near(M64 - 0xfffn), ...near(0x7fffffffffn)];
    const sizes = [0n, 1n, 0x1000n, 0x2000n, 0x200000n, ...near(1n << 53n), M64 - 0xfffn, M64];
    const vaddrs = [a.guest, a.guest + 0x1000n, a.guest + 1n, 0n, 1n << 53n, M64 - 0xfffn];
    const seen = new Map<number, number>();
    for (let i = 0; i < 600; i++) {
      const iova = pick(iovas);
      const vaddr = pick(vaddrs);
      const size = pick(sizes);
      const read = r() < 0.9;
      const write = r() < 0.9;
      const ra = typedMap(a, iova, vaddr, size, read, write);
      const rb = rawMap(b, iova, vaddr, size, read, write);
      expect([i, ra]).toEqual([i, rb]);
      seen.set(ra, (seen.get(ra) ?? 0) + 1);
      if (r() < 0.1) {
        expect(a.h.unmapDma({ iova: 0n, size: 0n, all: true })).toEqual(b.h.unmapDma({ iova: 0n, size: 0n, all: true }));
      }
      if (r() < 0.05) expect(a.h.startDirtyTracking()).toEqual(b.h.startDirtyTracking());
    }
    expect(snapshot(a.h.iommu, a.proc)).toEqual(snapshot(b.h.iommu, b.proc));
    // The draw reaches the map itself and the handler's refusals, not one errno throughout.
    expect(seen.get(0)).toBeGreaterThan(10);
    for (const e of [Errno.EINVAL, Errno.EEXIST, Errno.EFAULT]) expect(seen.get(-e)).toBeGreaterThan(0);
  });

  it("fails with the ioctl's errno when the scratch page is gone or the fd is not the container", () => {
    const a = side();
    const q = { iova: 0x100000n, vaddr: a.guest, size: 0x1000n };
    // The fd closed: EBADF. A new container at the same fd number gets the call.
    const fd = a.h.fd;
    expect(a.proc.close(fd).ret).toBe(0);
    expect(a.h.mapDma(q)).toMatchObject({ ok: false, errno: Errno.EBADF });
    expect(a.proc.open("/dev/vfio/vfio").ret).toBe(fd);
    // A container without an IOMMU driver set: EINVAL, as ioctl() answers.
    expect(a.proc.ioctl(fd, VFIO_IOMMU_MAP_DMA, a.arg)).toEqual({ ret: -1, errno: Errno.EINVAL });
    expect(a.h.mapDma(q)).toMatchObject({ ok: false, errno: Errno.EINVAL });
    // Another kind of file there gets the ioctl itself: a memfd has none (ENOTTY).
    expect(a.proc.close(fd).ret).toBe(0);
    expect(a.proc.memfdCreate("not-a-container").ret).toBe(fd);
    expect(a.proc.ioctl(fd, VFIO_IOMMU_MAP_DMA, a.arg)).toEqual({ ret: -1, errno: Errno.ENOTTY });
    expect(a.h.mapDma(q)).toMatchObject({ ok: false, errno: Errno.ENOTTY });
    // The scratch page unmapped: the handle's own store faults first.
    const c = side();
    expect(c.h.mapDma(q)).toEqual({ ok: true, value: undefined });
    const scratch = (c.h as unknown as { scratch: bigint }).scratch;
    expect(c.proc.munmap(scratch, 0x10000).ret).toBe(0);
    expect(c.h.mapDma({ ...q, iova: 0x200000n })).toMatchObject({ ok: false, errno: Errno.EFAULT });
    expect(c.h.iommu.dmaList.length).toBe(1);
  });
});
