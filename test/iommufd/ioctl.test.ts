/**
 * iommufd ioctl ABI beyond the selftests: framing errors, the errno of each check in
 * HWPT_GET_DIRTY_BITMAP / SET_DIRTY_TRACKING / IOAS_MAP / IOAS_UNMAP (state unchanged
 * after each failure), dropped walk errors (tracking off → 0 with the bitmap untouched),
 * and iova_bitmap windowing with set-ahead across windows against a direct computation.
 */
import { Process, PAGE_SIZE } from "../../src/process";
import { IommufdCtx, installIommufd } from "../../src/iommufd";
import * as U from "../../src/iommufd/uapi";
import { Errno } from "../../src/uapi/errno";
import { Rng } from "../../src/util/random";

class Ctx {
  readonly proc = new Process();
  readonly fd: number;
  readonly cmd: bigint;

  constructor() {
    installIommufd(this.proc);
    this.fd = this.proc.open("/dev/iommu").ret;
    this.cmd = BigInt(this.proc.mmap(undefined, PAGE_SIZE).ret);
  }

  raw(cmd: number, bytes: Uint8Array): { errno: number; out: DataView } {
    this.proc.write(this.cmd, bytes);
    const r = this.proc.ioctl(this.fd, cmd, this.cmd);
    const back = this.proc.read(this.cmd, bytes.length)!;
    return { errno: r.errno, out: new DataView(back.buffer, back.byteOffset, back.length) };
  }

  call(cmd: number, size: number, fill: (dv: DataView) => void): { errno: number; out: DataView } {
    const b = new Uint8Array(size);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, size, true);
    fill(dv);
    return this.raw(cmd, b);
  }

  ioas(): number {
    return this.call(U.IOMMU_IOAS_ALLOC, 12, () => undefined).out.getUint32(8, true);
  }

  map(ioas: number, uaddr: bigint, length: bigint, iova: bigint, flags = 7): number {
    return this.call(U.IOMMU_IOAS_MAP, 40, (dv) => {
      dv.setUint32(4, flags, true);
      dv.setUint32(8, ioas, true);
      dv.setBigUint64(16, uaddr, true);
      dv.setBigUint64(24, length, true);
      dv.setBigUint64(32, iova, true);
    }).errno;
  }

  mockDomain(pt: number, flags: number): { stdev: number; hwpt: number; idev: number } {
    const r = this.call(U.IOMMU_TEST_CMD, 72, (dv) => {
      dv.setUint32(4, U.IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, true);
      dv.setUint32(8, pt, true);
      dv.setUint32(28, flags, true);
    });
    expect(r.errno).toBe(0);
    return { stdev: r.out.getUint32(16, true), hwpt: r.out.getUint32(20, true), idev: r.out.getUint32(24, true) };
  }

  hwpt(idev: number, ioas: number, flags: number): number {
    const r = this.call(U.IOMMU_HWPT_ALLOC, 40, (dv) => {
      dv.setUint32(4, flags, true);
      dv.setUint32(8, idev, true);
      dv.setUint32(12, ioas, true);
    });
    expect(r.errno).toBe(0);
    return r.out.getUint32(16, true);
  }

  track(hwpt: number, flags: number, reserved = 0): number {
    return this.call(U.IOMMU_HWPT_SET_DIRTY_TRACKING, 16, (dv) => {
      dv.setUint32(4, flags, true);
      dv.setUint32(8, hwpt, true);
      dv.setUint32(12, reserved, true);
    }).errno;
  }

  get(hwpt: number, iova: bigint, length: bigint, pageSize: bigint, data: bigint, flags = 0, reserved = 0): number {
    return this.call(U.IOMMU_HWPT_GET_DIRTY_BITMAP, 48, (dv) => {
      dv.setUint32(4, hwpt, true);
      dv.setUint32(8, flags, true);
      dv.setUint32(12, reserved, true);
      dv.setBigUint64(16, iova, true);
      dv.setBigUint64(24, length, true);
      dv.setBigUint64(32, pageSize, true);
      dv.setBigUint64(40, data, true);
    }).errno;
  }

  setDirty(hwpt: number, iova: bigint, length: bigint, pageSize: bigint, bits: Uint8Array): number {
    const buf = BigInt(this.proc.mmap(undefined, bits.length + PAGE_SIZE).ret);
    this.proc.write(buf, bits);
    const r = this.call(U.IOMMU_TEST_CMD, 72, (dv) => {
      dv.setUint32(4, U.IOMMU_TEST_OP_DIRTY, true);
      dv.setUint32(8, hwpt, true);
      dv.setBigUint64(24, iova, true);
      dv.setBigUint64(32, length, true);
      dv.setBigUint64(40, pageSize, true);
      dv.setBigUint64(48, buf, true);
    });
    expect(r.errno).toBe(0);
    return Number(r.out.getBigUint64(56, true));
  }
}

const START = U.MOCK_APERTURE_START;

function setupMapped(len: bigint, huge: boolean): { c: Ctx; ioas: number; hwpt: number; buf: bigint } {
  const c = new Ctx();
  // hugetlbfs-backed, as the selftest's huge variants are: physically contiguous pages.
  (c.proc.fdget(c.fd) as IommufdCtx).physContiguous = huge;
  const ioas = c.ioas();
  const dev = c.mockDomain(ioas, huge ? U.MOCK_FLAGS_DEVICE_HUGE_IOVA : 0);
  const r = c.proc.mmap(undefined, Number(len) + (2 << 20));
  const buf = BigInt(Math.ceil(r.ret / (2 << 20)) * (2 << 20));
  expect(c.map(ioas, buf, len, START)).toBe(0);
  const hwpt = c.hwpt(dev.idev, ioas, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
  return { c, ioas, hwpt, buf };
}

describe("ioctl framing", () => {
  test("ENOTTY, short size EINVAL, non-zero tail E2BIG, zero tail accepted", () => {
    const c = new Ctx();
    expect(c.call(0x3b99, 16, () => undefined).errno).toBe(Errno.ENOTTY);
    expect(c.call(U.IOMMU_IOAS_ALLOC, 8, () => undefined).errno).toBe(Errno.EINVAL);
    const big = new Uint8Array(20);
    new DataView(big.buffer).setUint32(0, 20, true);
    big[19] = 1;
    expect(c.raw(U.IOMMU_IOAS_ALLOC, big).errno).toBe(Errno.E2BIG);
    big[19] = 0;
    const ok = c.raw(U.IOMMU_IOAS_ALLOC, big);
    expect(ok.errno).toBe(0);
    expect(ok.out.getUint32(8, true)).toBe(1);
    expect(c.proc.ioctl(c.fd, U.IOMMU_IOAS_ALLOC, 0x10n).errno).toBe(Errno.EFAULT);
  });
});

describe("HWPT_GET_DIRTY_BITMAP / SET_DIRTY_TRACKING checks", () => {
  test("errno per check, in the kernel's order", () => {
    const { c, ioas, hwpt } = setupMapped(1n << 20n, false);
    const bm = BigInt(c.proc.mmap(undefined, PAGE_SIZE).ret);
    expect(c.get(hwpt, START, 1n << 20n, 2048n, bm, 2)).toBe(Errno.EOPNOTSUPP);
    expect(c.get(hwpt, START, 1n << 20n, 2048n, bm, 0, 1)).toBe(Errno.EOPNOTSUPP);
    expect(c.get(ioas, START, 1n << 20n, 2048n, bm)).toBe(Errno.ENOENT);
    expect(c.get(hwpt, 2n, U.U64_MAX, 2048n, bm)).toBe(Errno.EOVERFLOW);
    expect(c.get(hwpt, START + 1024n, 1n << 20n, 2048n, bm)).toBe(Errno.EINVAL); // iova_alignment 2 KiB
    expect(c.get(hwpt, START, 1n << 20n, 0n, bm)).toBe(Errno.EINVAL);
    expect(c.get(hwpt, START, 1n << 20n, 1n << 21n, bm)).toBe(Errno.EINVAL); // not page_size aligned
    expect(c.track(hwpt, 2)).toBe(Errno.EOPNOTSUPP);
    expect(c.track(ioas, 1)).toBe(Errno.ENOENT);
    expect(c.track(hwpt, 1, 0xdead)).toBe(0); // __reserved is not checked
    // A HWPT without dirty ops.
    const plain = c.hwpt(c.mockDomain(ioas, 0).idev, ioas, 0);
    expect(c.track(plain, 1)).toBe(Errno.EOPNOTSUPP);
    expect(c.get(plain, START, 1n << 20n, 2048n, bm)).toBe(Errno.EOPNOTSUPP);
  });

  test("tracking off: the mock refuses the walk, the ioctl still returns 0 and the bitmap is untouched", () => {
    const { c, hwpt } = setupMapped(1n << 20n, false);
    expect(c.track(hwpt, 1)).toBe(0);
    expect(c.setDirty(hwpt, START, 1n << 20n, 2048n, new Uint8Array([0xff]))).toBe(8);
    expect(c.track(hwpt, 0)).toBe(0);
    const bm = BigInt(c.proc.mmap(undefined, PAGE_SIZE).ret);
    c.proc.write(bm, new Uint8Array([0xa5]));
    expect(c.get(hwpt, START, 1n << 20n, 2048n, bm)).toBe(0);
    expect(c.proc.read(bm, 1)![0]).toBe(0xa5);
    // Enabling again clears first: the old dirty bits are gone.
    expect(c.track(hwpt, 1)).toBe(0);
    c.proc.write(bm, new Uint8Array(64));
    expect(c.get(hwpt, START, 1n << 20n, 2048n, bm)).toBe(0);
    expect([...c.proc.read(bm, 64)!].every((b) => b === 0)).toBe(true);
  });

  test("a hole stops the walk after the areas before it; the ioctl returns 0", () => {
    const c = new Ctx();
    const ioas = c.ioas();
    const dev = c.mockDomain(ioas, 0);
    const buf = BigInt(c.proc.mmap(undefined, 4 << 20).ret);
    expect(c.map(ioas, buf, 1n << 20n, START)).toBe(0);
    expect(c.map(ioas, buf + (2n << 20n), 1n << 20n, START + (2n << 20n))).toBe(0);
    const hwpt = c.hwpt(dev.idev, ioas, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    expect(c.track(hwpt, 1)).toBe(0);
    const all = new Uint8Array(192).fill(0xff); // 3 MiB / 2 KiB = 1536 bits
    expect(c.setDirty(hwpt, START, 3n << 20n, 2048n, all)).toBe(1024); // only present entries count
    const bm = BigInt(c.proc.mmap(undefined, PAGE_SIZE).ret);
    expect(c.get(hwpt, START, 3n << 20n, 2048n, bm)).toBe(0);
    const got = c.proc.read(bm, 192)!;
    expect(got.subarray(0, 64).every((b) => b === 0xff)).toBe(true); // first area reported
    expect(got.subarray(64).every((b) => b === 0)).toBe(true); // walk stopped at the hole
  });
});

describe("iova_bitmap windows", () => {
  test("page_size 1: leaves straddle 2 MiB bitmap windows, each reported once and whole (6.12's single walk), unaligned user bitmap", () => {
    const len = 48n << 20n;
    const { c, hwpt } = setupMapped(len, true); // 1 MiB leaves
    expect(c.track(hwpt, 1)).toBe(0);
    const rng = new Rng(99);
    const nLeaves = Number(len >> 20n);
    const dirty = new Set<number>();
    const marks = new Uint8Array(nLeaves * 64); // bit per 2 KiB over the range
    for (let l = 0; l < nLeaves; l++) {
      if (!rng.chance(0.5)) continue;
      dirty.add(l);
      const bit = l * 512 + rng.int(512); // any granule of the leaf marks the whole leaf
      marks[bit >> 3] |= 1 << (bit & 7);
    }
    expect(c.setDirty(hwpt, START, len, 2048n, marks)).toBe(dirty.size);
    // page_size 1: one bit per byte of IOVA → 6 MiB of bitmap, 4 windows. The first
    // window is 2 MiB - 0x123 bytes of bitmap, so later windows start inside a leaf.
    const bytes = Number(len / 8n);
    const area = BigInt(c.proc.mmap(undefined, bytes + 2 * PAGE_SIZE).ret);
    const skew = 0x123;
    const bm = area + BigInt(skew);
    const M = 1 << 20;
    const windowStarts: number[] = [];
    for (let w = (2 * M - skew) * 8; w < Number(len); w += 16 * M) windowStarts.push(w);
    // Reference: Linux 6.12 walks the whole range once (iova_bitmap pins the bitmap pages
    // lazily as bits are set, since 6.9), so the windows no longer restart the walk inside a
    // leaf: each dirty leaf sets its whole 1 MiB of bits, whichever windows they fall in.
    // (Before 6.9 each window restarted the walk and kept a misalignment; see git history.)
    const expected = (noClear: boolean, state: Set<number>): Uint8Array => {
      const e = new Uint8Array(bytes);
      const setBits = (from: number, to: number) => {
        for (let b = from; b < Math.min(to, bytes * 8); b++) e[b >> 3] |= 1 << (b & 7);
      };
      const starts = [0, Number(len)];
      for (let k = 0; k + 1 < starts.length; k++) {
        for (let pos = starts[k]; pos < starts[k + 1]; pos += M) {
          const l = Math.floor(pos / M);
          if (!state.has(l)) continue;
          setBits(pos, pos + M);
          if (!noClear) state.delete(l);
        }
      }
      return e;
    };
    const live = new Set(dirty);
    const run = (flags: number): number => {
      c.proc.write(bm, new Uint8Array(bytes));
      expect(c.get(hwpt, START, len, 1n, bm, flags)).toBe(0);
      const got = c.proc.read(bm, bytes)!;
      const want = expected(flags !== 0, live);
      let wrong = 0;
      for (let i = 0; i < bytes; i++) if (got[i] !== want[i]) wrong++;
      return wrong;
    };
    expect(windowStarts.length).toBe(3);
    expect(windowStarts.some((w) => dirty.has(Math.floor(w / M)))).toBe(true);
    expect(run(U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR)).toBe(0);
    expect(run(0)).toBe(0);
    c.proc.write(bm, new Uint8Array(bytes));
    expect(c.get(hwpt, START, len, 1n, bm, 0)).toBe(0);
    const wrong = c.proc.read(bm, bytes)!.some((b) => b !== 0) ? 1 : 0;
    expect(wrong).toBe(0);
  });
});

describe("IOAS_MAP / IOAS_UNMAP", () => {
  test("errors leave the IOAS and its domains unchanged", () => {
    const { c, ioas, hwpt } = setupMapped(1n << 20n, false);
    const buf = BigInt(c.proc.mmap(undefined, 8 << 20).ret);
    expect(c.map(ioas, buf, 1n << 20n, START)).toBe(Errno.EEXIST);
    expect(c.map(ioas, buf, 1n << 20n, START + 1024n)).toBe(Errno.EINVAL);
    expect(c.map(ioas, buf, 1n << 20n, START + (4n << 20n), 8)).toBe(Errno.EOPNOTSUPP);
    expect(c.map(ioas, buf, 1n << 20n, START + (4n << 20n), 1)).toBe(Errno.EINVAL);
    const unmap = (iova: bigint, length: bigint) =>
      c.call(U.IOMMU_IOAS_UNMAP, 24, (dv) => {
        dv.setUint32(4, ioas, true);
        dv.setBigUint64(8, iova, true);
        dv.setBigUint64(16, length, true);
      });
    expect(unmap(START, 4096n).errno).toBe(Errno.ENOENT); // would split the area
    expect(unmap(START + (8n << 20n), 4096n).errno).toBe(Errno.ENOENT);
    // Still mapped and still tracked: dirty bits round-trip.
    expect(c.track(hwpt, 1)).toBe(0);
    expect(c.setDirty(hwpt, START, 1n << 20n, 2048n, new Uint8Array([1]))).toBe(1);
    const r = unmap(0n, U.U64_MAX);
    expect(r.errno).toBe(0);
    expect(r.out.getBigUint64(16, true)).toBe(1n << 20n);
    expect(unmap(0n, U.U64_MAX).errno).toBe(0);
    expect(c.setDirty(hwpt, START, 1n << 20n, 2048n, new Uint8Array([1]))).toBe(0);
  });
});
