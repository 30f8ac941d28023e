/**
 * Port of tools/testing/selftests/iommu/iommufd.c FIXTURE(iommufd_dirty_tracking): every
 * variant and every TEST_F, driven through /dev/iommu of a simulated process exactly as
 * the C test drives the kernel (structs written to user memory, ioctl, results read back),
 * with the helpers of iommufd_utils.h re-implemented below. Gen A mock (2 KiB IO pages,
 * 1 MiB huge pages, 4 KiB host pages).
 */
import { Process, PAGE_SIZE } from "../../src/process";
import { IommufdCtx, installIommufd } from "../../src/iommufd";
import * as U from "../../src/iommufd/uapi";
import { Errno } from "../../src/uapi/errno";

interface Variant {
  name: string;
  bufferSize: number;
  hugepages: boolean;
}

// FIXTURE_VARIANT_ADD(iommufd_dirty_tracking, ...): the exact list.
const VARIANTS: Variant[] = [
  { name: "domain_dirty8k", bufferSize: 8 << 10, hugepages: false },
  { name: "domain_dirty16k", bufferSize: 16 << 10, hugepages: false },
  { name: "domain_dirty128k", bufferSize: 128 << 10, hugepages: false },
  { name: "domain_dirty256k", bufferSize: 256 << 10, hugepages: false },
  { name: "domain_dirty640k", bufferSize: 640 << 10, hugepages: false },
  { name: "domain_dirty128M", bufferSize: 128 << 20, hugepages: false },
  { name: "domain_dirty128M_huge", bufferSize: 128 << 20, hugepages: true },
  { name: "domain_dirty256M", bufferSize: 256 << 20, hugepages: false },
  { name: "domain_dirty256M_huge", bufferSize: 256 << 20, hugepages: true },
];

const HUGEPAGE_SIZE = 2 << 20;

/** The test's view of the kernel: struct helpers over the simulated process. */
class Fixture {
  readonly proc = new Process();
  fd = -1;
  ioasId = 0;
  hwptId = 0;
  stdevId = 0;
  idevId = 0;
  pageSize = U.MOCK_PAGE_SIZE;
  bitmapSize = 0; // bits
  bitmap = 0n;
  buffer = 0n;
  private cmd = 0n;

  constructor(readonly v: Variant) {}

  setup(): void {
    installIommufd(this.proc);
    this.fd = this.proc.open("/dev/iommu").ret;
    expect(this.fd).toBeGreaterThanOrEqual(0);
    // The huge variants' buffers are MAP_HUGETLB: physically contiguous.
    (this.proc.fdget(this.fd) as IommufdCtx).physContiguous = this.v.hugepages;
    // posix_memalign(HUGEPAGE_SIZE) + mmap(MAP_FIXED): a 2 MiB-aligned buffer.
    const bufLen = Math.max(this.v.bufferSize, this.v.hugepages ? HUGEPAGE_SIZE : 0);
    this.buffer = BigInt(this.mmapAligned(bufLen, HUGEPAGE_SIZE));
    this.bitmapSize = this.v.bufferSize / this.pageSize;
    // posix_memalign(PAGE_SIZE, DIV_ROUND_UP(bits, 8) + PAGE_SIZE)
    this.bitmap = BigInt(this.mmapAligned(Math.ceil(this.bitmapSize / 8) + PAGE_SIZE, PAGE_SIZE));
    this.cmd = BigInt(this.mmapAligned(PAGE_SIZE, PAGE_SIZE));
    this.ioasId = this.ioasAlloc();
    const r = this.mockDomainFlags(this.ioasId, this.v.hugepages ? U.MOCK_FLAGS_DEVICE_HUGE_IOVA : 0);
    expect(r.errno).toBe(0);
    [this.stdevId, this.hwptId, this.idevId] = [r.stdev, r.hwpt, r.idev];
  }

  teardown(): void {
    this.proc.close(this.fd);
    this.proc.exit();
  }

  private mmapAligned(len: number, align: number): number {
    const r = this.proc.mmap(undefined, len + align);
    expect(r.errno).toBe(0);
    const base = Math.ceil(r.ret / align) * align;
    return base;
  }

  /** Writes a struct at the command scratch, issues the ioctl, returns errno and the struct. */
  ioctl(cmd: number, bytes: Uint8Array): { errno: number; out: DataView } {
    expect(this.proc.write(this.cmd, bytes).errno).toBe(0);
    const r = this.proc.ioctl(this.fd, cmd, this.cmd);
    const back = this.proc.read(this.cmd, bytes.length)!;
    return { errno: r.errno, out: new DataView(back.buffer, back.byteOffset, back.length) };
  }

  private struct(size: number, fill: (dv: DataView) => void): Uint8Array {
    const b = new Uint8Array(size);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, size, true);
    fill(dv);
    return b;
  }

  ioasAlloc(): number {
    const r = this.ioctl(U.IOMMU_IOAS_ALLOC, this.struct(12, () => undefined));
    expect(r.errno).toBe(0);
    return r.out.getUint32(8, true);
  }

  destroy(id: number): number {
    return this.ioctl(U.IOMMU_DESTROY, this.struct(8, (dv) => dv.setUint32(4, id, true))).errno;
  }

  /** test_ioctl_ioas_map_fixed_id(ioas, buffer, length, iova). */
  ioasMapFixed(ioas: number, buffer: bigint, length: number, iova: bigint): void {
    const flags = U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_WRITEABLE | U.IOMMU_IOAS_MAP_READABLE;
    const r = this.ioctl(
      U.IOMMU_IOAS_MAP,
      this.struct(40, (dv) => {
        dv.setUint32(4, flags, true);
        dv.setUint32(8, ioas, true);
        dv.setBigUint64(16, buffer, true);
        dv.setBigUint64(24, BigInt(length), true);
        dv.setBigUint64(32, iova, true);
      }),
    );
    expect(r.errno).toBe(0);
  }

  mockDomainFlags(ptId: number, flags: number): { errno: number; stdev: number; hwpt: number; idev: number } {
    const r = this.ioctl(
      U.IOMMU_TEST_CMD,
      this.struct(72, (dv) => {
        dv.setUint32(4, flags ? U.IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS : U.IOMMU_TEST_OP_MOCK_DOMAIN, true);
        dv.setUint32(8, ptId, true);
        dv.setUint32(28, flags, true);
      }),
    );
    return { errno: r.errno, stdev: r.out.getUint32(16, true), hwpt: r.out.getUint32(20, true), idev: r.out.getUint32(24, true) };
  }

  hwptAlloc(devId: number, ptId: number, flags: number): { errno: number; id: number } {
    const r = this.ioctl(
      U.IOMMU_HWPT_ALLOC,
      this.struct(40, (dv) => {
        dv.setUint32(4, flags, true);
        dv.setUint32(8, devId, true);
        dv.setUint32(12, ptId, true);
      }),
    );
    return { errno: r.errno, id: r.out.getUint32(16, true) };
  }

  setDirtyTracking(hwpt: number, enabled: boolean): void {
    const r = this.ioctl(
      U.IOMMU_HWPT_SET_DIRTY_TRACKING,
      this.struct(16, (dv) => {
        dv.setUint32(4, enabled ? U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0, true);
        dv.setUint32(8, hwpt, true);
      }),
    );
    expect(r.errno).toBe(0);
  }

  getHwCapabilities(devId: number): bigint {
    const r = this.ioctl(U.IOMMU_GET_HW_INFO, this.struct(40, (dv) => dv.setUint32(8, devId, true)));
    expect(r.errno).toBe(0);
    return r.out.getBigUint64(32, true);
  }

  getDirtyBitmap(hwpt: number, length: number, iova: bigint, pageSize: number, bitmap: bigint, flags: number): void {
    const r = this.ioctl(
      U.IOMMU_HWPT_GET_DIRTY_BITMAP,
      this.struct(48, (dv) => {
        dv.setUint32(4, hwpt, true);
        dv.setUint32(8, flags, true);
        dv.setBigUint64(16, iova, true);
        dv.setBigUint64(24, BigInt(length), true);
        dv.setBigUint64(32, BigInt(pageSize), true);
        dv.setBigUint64(40, bitmap, true);
      }),
    );
    expect(r.errno).toBe(0);
  }

  /** test_cmd_mock_domain_set_dirty(): returns out_nr_dirty. */
  mockSetDirty(hwpt: number, length: number, iova: bigint, pageSize: number, bitmap: bigint): number {
    const r = this.ioctl(
      U.IOMMU_TEST_CMD,
      this.struct(72, (dv) => {
        dv.setUint32(4, U.IOMMU_TEST_OP_DIRTY, true);
        dv.setUint32(8, hwpt, true);
        dv.setBigUint64(24, iova, true);
        dv.setBigUint64(32, BigInt(length), true);
        dv.setBigUint64(40, BigInt(pageSize), true);
        dv.setBigUint64(48, bitmap, true);
      }),
    );
    expect(r.errno).toBe(0);
    return Number(r.out.getBigUint64(56, true));
  }

  /** _test_mock_dirty_bitmaps() of iommufd_utils.h. */
  testMockDirtyBitmaps(hwpt: number, length: number, iova: bigint, pageSize: number, ptePageSize: number, bitmap: bigint, nbits: number, flags: number): void {
    const npte = ptePageSize / pageSize;
    const pteset = 2 * npte;
    const nr = Math.floor(nbits / pteset) || 1;
    const bytes = Math.ceil(nbits / 8);
    const bits = new Uint8Array(bytes);
    for (let i = 0; i < nbits; i += pteset) bits[i >> 3] |= 1 << (i & 7);
    expect(this.proc.write(bitmap, bits).errno).toBe(0);
    expect(this.mockSetDirty(hwpt, length, iova, pageSize, bitmap)).toBe(nr);

    const check = (expectSet: boolean): void => {
      const got = this.proc.read(bitmap, bytes)!;
      const bit = (k: number): boolean => ((got[k >> 3] >> (k & 7)) & 1) === 1;
      let bad = 0;
      for (let i = 0; i < nbits; i += pteset) {
        for (let j = 0; j < pteset; j++) if (bit(i + j) !== (j < npte && expectSet)) bad++;
        if (bit(i) !== expectSet) bad++;
      }
      expect(bad).toBe(0);
    };
    expect(this.proc.write(bitmap, new Uint8Array(bytes)).errno).toBe(0);
    this.getDirtyBitmap(hwpt, length, iova, pageSize, bitmap, flags);
    check(true);
    expect(this.proc.write(bitmap, new Uint8Array(bytes)).errno).toBe(0);
    this.getDirtyBitmap(hwpt, length, iova, pageSize, bitmap, flags);
    check((flags & U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0);
  }
}

describe.each(VARIANTS.map((v) => [v.name, v]))("iommufd_dirty_tracking.%s", (_name, variant) => {
  const v = variant as Variant;
  let self: Fixture;
  beforeEach(() => {
    self = new Fixture(v);
    self.setup();
  });
  afterEach(() => self.teardown());

  test("enforce_dirty", () => {
    const devFlags = U.MOCK_FLAGS_DEVICE_NO_DIRTY;
    // Regular case
    const h = self.hwptAlloc(self.idevId, self.ioasId, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    expect(h.errno).toBe(0);
    const m = self.mockDomainFlags(h.id, 0);
    expect(m.errno).toBe(0);
    expect(self.mockDomainFlags(h.id, devFlags).errno).toBe(Errno.EINVAL);
    expect(self.destroy(m.stdev)).toBe(0);
    expect(self.destroy(h.id)).toBe(0);
    // IOMMU device does not support dirty tracking
    const ioas = self.ioasAlloc();
    const n = self.mockDomainFlags(ioas, devFlags);
    expect(n.errno).toBe(0);
    expect(self.hwptAlloc(n.idev, ioas, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING).errno).toBe(Errno.EOPNOTSUPP);
    expect(self.destroy(n.stdev)).toBe(0);
  });

  test("set_dirty_tracking", () => {
    const h = self.hwptAlloc(self.idevId, self.ioasId, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    expect(h.errno).toBe(0);
    const m = self.mockDomainFlags(h.id, 0);
    expect(m.errno).toBe(0);
    self.setDirtyTracking(h.id, true);
    self.setDirtyTracking(h.id, false);
    expect(self.destroy(m.stdev)).toBe(0);
    expect(self.destroy(h.id)).toBe(0);
  });

  test("device_dirty_capability", () => {
    const h = self.hwptAlloc(self.idevId, self.ioasId, 0);
    expect(h.errno).toBe(0);
    const m = self.mockDomainFlags(h.id, 0);
    expect(m.errno).toBe(0);
    const caps = self.getHwCapabilities(self.idevId);
    expect(caps & BigInt(U.IOMMU_HW_CAP_DIRTY_TRACKING)).toBe(BigInt(U.IOMMU_HW_CAP_DIRTY_TRACKING));
    expect(self.destroy(m.stdev)).toBe(0);
    expect(self.destroy(h.id)).toBe(0);
  });

  for (const [name, flags] of [
    ["get_dirty_bitmap", 0],
    ["get_dirty_bitmap_no_clear", U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR],
  ] as const) {
    test(name, () => {
      const ptePageSize = v.hugepages ? U.MOCK_HUGE_PAGE_SIZE : U.MOCK_PAGE_SIZE;
      const ioas = self.ioasAlloc();
      self.ioasMapFixed(ioas, self.buffer, v.bufferSize, U.MOCK_APERTURE_START);
      const h = self.hwptAlloc(self.idevId, ioas, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
      expect(h.errno).toBe(0);
      self.setDirtyTracking(h.id, true);
      const run = (bitmap: bigint): void =>
        self.testMockDirtyBitmaps(h.id, v.bufferSize, U.MOCK_APERTURE_START, self.pageSize, ptePageSize, bitmap, self.bitmapSize, flags);
      run(self.bitmap);
      // PAGE_SIZE unaligned bitmap
      run(self.bitmap + BigInt(U.MOCK_PAGE_SIZE));
      // u64 unaligned bitmap
      run(self.bitmap + 0xff1n);
      expect(self.destroy(h.id)).toBe(0);
    });
  }
});
