/**
 * DMA logging in the VFIO core (vfio_ioctl_device_feature_logging_start/stop/report), one
 * test per rule Linux applies, with a tracking driver: the errno of each bad argument, a
 * failed call leaving the driver untouched, the chosen page size written back, REPORT
 * through iova_bitmap (bits only ever set, any power-of-two page size, read-and-clear by
 * the driver) against a naive reference, and the two pinning behaviours (6.12 lazy, 6.1
 * upfront).
 */
import { Process, PROT_READ } from "../../src/process";
import { Rng } from "../../src/util/random";
import { Errno, type KernelResult } from "../../src/uapi/errno";
import {
  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_PROBE,
  VFIO_DEVICE_FEATURE_SET,
  LOG_MAX_RANGES,
} from "../../src/uapi/vfio";
import { VfioCoreDevice, VfioDevice, installVfioDevice, VFIO_CORE_LINUX_6_1, VFIO_CORE_LINUX_6_12 } from "../../src/vfio";
import type { IovaBitmapSet, VfioDeviceDriver, VfioLogOps, VfioLogRange, VfioCoreProfile } from "../../src/vfio";

const PAGE = 0x1000n;

/** A device that logs its own DMA at 4 KiB into the armed ranges and reports read-and-clear. */
class Tracker implements VfioDeviceDriver, VfioLogOps {
  readonly name = "tracker";
  readonly migrationFlags = 0;
  readonly logOps = this;
  ranges: readonly VfioLogRange[] | null = null;
  dirty = new Set<bigint>();
  calls: string[] = [];
  logStart(ranges: readonly VfioLogRange[], pageSize: bigint): KernelResult<bigint> {
    this.calls.push("start");
    this.ranges = ranges;
    return { ok: true, value: pageSize < PAGE ? PAGE : pageSize }; // the hint, at least 4 KiB
  }
  logStop(): KernelResult<void> {
    this.calls.push("stop");
    this.ranges = null;
    return { ok: true, value: undefined };
  }
  logReadAndClear(iova: bigint, length: bigint, dirty: IovaBitmapSet): KernelResult<void> {
    for (const p of [...this.dirty].sort((a, b) => (a < b ? -1 : 1))) {
      if (p < iova || p >= iova + length) continue;
      dirty.set(p, PAGE);
      this.dirty.delete(p);
    }
    return { ok: true, value: undefined };
  }
  /** The device writes at `iova` (logged only inside an armed range). */
  dma(iova: bigint): void {
    if (this.ranges?.some((r) => iova >= r.start && iova <= r.last)) this.dirty.add(iova & ~(PAGE - 1n));
  }
}

function world(profile: VfioCoreProfile = VFIO_CORE_LINUX_6_12, driver: VfioDeviceDriver = new Tracker()) {
  const proc = new Process();
  installVfioDevice(proc, "/dev/vfio/devices/vfio0", new VfioCoreDevice(driver, profile));
  const d = VfioDevice.open(proc, "/dev/vfio/devices/vfio0");
  if (!d.ok) throw new Error("open");
  return { proc, dev: d.value, drv: driver as Tracker };
}

const err = (errno: number) => ({ ok: false, errno });
const START = VFIO_DEVICE_FEATURE_DMA_LOGGING_START;
const u64s = (...v: bigint[]): Uint8Array => {
  const b = new Uint8Array(v.length * 8);
  v.forEach((x, i) => new DataView(b.buffer).setBigUint64(i * 8, x, true));
  return b;
};

describe("DMA_LOGGING_START", () => {
  test("a driver without log ops: ENOTTY for all three", () => {
    const { dev } = world(VFIO_CORE_LINUX_6_12, { name: "none", migrationFlags: 0 });
    expect(dev.startLogging([{ iova: 0n, length: PAGE }], PAGE)).toMatchObject(err(Errno.ENOTTY));
    expect(dev.stopLogging()).toMatchObject(err(Errno.ENOTTY));
    expect(dev.report(0n, PAGE, PAGE)).toMatchObject(err(Errno.ENOTTY));
  });

  test("PROBE: SET only (GET is EINVAL), no argsz needed", () => {
    const { dev, drv } = world();
    expect(dev.feature(VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET | START).ok).toBe(true);
    expect(dev.feature(VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET | START)).toMatchObject(err(Errno.EINVAL));
    expect(dev.feature(VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP)).toMatchObject(err(Errno.EINVAL));
    expect(dev.feature(VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT)).toMatchObject(err(Errno.EINVAL));
    expect(drv.calls).toEqual([]);
  });

  test("argsz short of the control struct: EINVAL", () => {
    const { dev, drv } = world();
    const ctl = u64s(PAGE, 1n, 0n);
    expect(dev.feature(VFIO_DEVICE_FEATURE_SET | START, ctl, 8 + 23)).toMatchObject(err(Errno.EINVAL));
    expect(drv.calls).toEqual([]);
  });

  test("no ranges: EINVAL; more than LOG_MAX_RANGES (256): E2BIG before any range is read", () => {
    const { dev, drv } = world();
    expect(dev.startLogging([], PAGE)).toMatchObject(err(Errno.EINVAL));
    const ctl = u64s(PAGE, BigInt(LOG_MAX_RANGES + 1), 0n); // ranges pointer 0: never read
    expect(dev.feature(VFIO_DEVICE_FEATURE_SET | START, ctl)).toMatchObject(err(Errno.E2BIG));
    const many = Array.from({ length: LOG_MAX_RANGES }, (_, i) => ({ iova: BigInt(i) * 2n * PAGE, length: PAGE }));
    expect(dev.startLogging(many, PAGE).ok).toBe(true);
    expect(drv.ranges).toHaveLength(256);
  });

  test("unreadable ranges: EFAULT", () => {
    const { dev, drv } = world();
    const ctl = u64s(PAGE, 2n, 0x10n);
    expect(dev.feature(VFIO_DEVICE_FEATURE_SET | START, ctl)).toMatchObject(err(Errno.EFAULT));
    expect(drv.calls).toEqual([]);
  });

  test("unaligned iova or length: EINVAL (IS_ALIGNED, so page_size 0 accepts only 0 and a non-power-of-two mask applies as is)", () => {
    const { dev, drv } = world();
    expect(dev.startLogging([{ iova: 0x800n, length: PAGE }], PAGE)).toMatchObject(err(Errno.EINVAL));
    expect(dev.startLogging([{ iova: PAGE, length: 0x800n }], PAGE)).toMatchObject(err(Errno.EINVAL));
    expect(dev.startLogging([{ iova: PAGE, length: PAGE }], 0n)).toMatchObject(err(Errno.EINVAL));
    expect(drv.calls).toEqual([]);
    // IS_ALIGNED(0x1000, 3): (0x1000 & 2) == 0, as recorded on mtty (logging.trace).
    expect(dev.startLogging([{ iova: PAGE, length: PAGE }], 3n).ok).toBe(true);
  });

  test("a range past 2^64: EOVERFLOW", () => {
    const { dev } = world();
    expect(dev.startLogging([{ iova: 0xffff_ffff_ffff_f000n, length: 2n * PAGE }], PAGE)).toMatchObject(err(Errno.EOVERFLOW));
    expect(dev.startLogging([{ iova: 0xffff_ffff_ffff_f000n, length: PAGE }], PAGE)).toMatchObject(err(Errno.EOVERFLOW));
  });

  test("overlapping ranges: EINVAL in the caller's order; touching ranges are fine; sorted for the driver", () => {
    const { dev, drv } = world();
    expect(dev.startLogging([{ iova: PAGE, length: 2n * PAGE }, { iova: 2n * PAGE, length: PAGE }], PAGE)).toMatchObject(err(Errno.EINVAL));
    // the alignment error of the 2nd range wins over the overlap of the 3rd
    expect(dev.startLogging([{ iova: 0n, length: PAGE }, { iova: 0x800n, length: PAGE }, { iova: 0n, length: PAGE }], PAGE)).toMatchObject(err(Errno.EINVAL));
    expect(drv.calls).toEqual([]);
    expect(dev.startLogging([{ iova: 4n * PAGE, length: PAGE }, { iova: 0n, length: 4n * PAGE }], PAGE).ok).toBe(true);
    expect(drv.ranges).toEqual([{ start: 0n, last: 4n * PAGE - 1n }, { start: 4n * PAGE, last: 5n * PAGE - 1n }]);
  });

  test("the page size is a hint: the driver's choice is written back", () => {
    const { dev } = world();
    expect(dev.startLogging([{ iova: 0n, length: 0x10000n }], 0x400n)).toEqual({ ok: true, value: { pageSize: PAGE } });
    expect(dev.startLogging([{ iova: 0n, length: 0x200000n }], 0x200000n)).toEqual({ ok: true, value: { pageSize: 0x200000n } });
  });

  test("when the answer cannot be written back: EFAULT and the driver's logging is stopped again", () => {
    const { dev, drv, proc } = world();
    // Place the feature struct on a read-only page through the raw ioctl.
    const m = proc.mmap(undefined, 0x2000).ret;
    const base = BigInt(m);
    const b = new Uint8Array(8 + 24 + 16);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, 8 + 24, true);
    dv.setUint32(4, VFIO_DEVICE_FEATURE_SET | START, true);
    dv.setBigUint64(8, PAGE, true);
    dv.setUint32(16, 1, true);
    dv.setBigUint64(24, base + 32n, true);
    dv.setBigUint64(40, PAGE, true);
    proc.write(base, b);
    proc.mprotect(base, 0x1000, PROT_READ);
    expect(proc.ioctl(dev.fd, 0x3b75, base)).toEqual({ ret: -1, errno: Errno.EFAULT });
    expect(drv.calls).toEqual(["start", "stop"]);
    expect(drv.ranges).toBeNull();
  });
});

describe("DMA_LOGGING_STOP and REPORT", () => {
  test("STOP: SET only", () => {
    const { dev, drv } = world();
    expect(dev.feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP)).toMatchObject(err(Errno.EINVAL));
    expect(dev.stopLogging().ok).toBe(true);
    expect(drv.calls).toEqual(["stop"]);
  });

  test("REPORT: page size below 4 KiB or not a power of two: EINVAL; past 2^64: EOVERFLOW; argsz short: EINVAL", () => {
    const { dev } = world();
    expect(dev.report(0n, 0x10000n, 0x800n)).toMatchObject(err(Errno.EINVAL));
    expect(dev.report(0n, 0x10000n, 0x3000n)).toMatchObject(err(Errno.EINVAL));
    expect(dev.report(0n, 0x10000n, 0n)).toMatchObject(err(Errno.EINVAL));
    expect(dev.report(0xffff_ffff_ffff_f000n, PAGE, PAGE)).toMatchObject(err(Errno.EOVERFLOW));
    const rep = u64s(0n, 0x10000n, PAGE, 0n);
    expect(dev.feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, rep, 8 + 31)).toMatchObject(err(Errno.EINVAL));
    expect(dev.feature(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, rep)).toMatchObject(err(Errno.EINVAL));
  });

  test("random DMA, any power-of-two page size: the bitmap matches a naive reference, then reads clear", () => {
    const rng = new Rng(12);
    for (let round = 0; round < 40; round++) {
      const { dev, drv } = world();
      const len = 0x400000n; // 4 MiB
      expect(dev.startLogging([{ iova: 0n, length: len }], PAGE).ok).toBe(true);
      const pages = new Set<bigint>();
      for (let i = 0, n = rng.int(200); i < n; i++) {
        const a = BigInt(rng.int(Number(len))) + (rng.chance(0.1) ? len : 0n); // some outside the range: not logged
        drv.dma(a);
        if (a < len) pages.add(a & ~(PAGE - 1n));
      }
      const shift = 12 + rng.int(11); // 4 KiB .. 4 MiB
      const ps = 1n << BigInt(shift);
      const start = BigInt(rng.int(4)) * ps;
      const want = new Uint8Array(Number((((len - 1n) >> BigInt(shift)) / 64n + 1n) * 8n));
      for (const p of pages) if (p >= start && p < start + len) {
        const bit = Number((p - start) >> BigInt(shift));
        want[bit >> 3] |= 1 << (bit & 7);
      }
      const got = dev.report(start, len, ps);
      expect(got.ok && Array.from(got.value)).toEqual(Array.from(want));
      // Read and clear: the reported pages are gone, those before `start` remain.
      const again = dev.report(start, len, ps);
      expect(again.ok && again.value.every((b) => b === 0)).toBe(true);
    }
  });

  test("REPORT only sets bits: what the caller left in the bitmap stays", () => {
    const { dev, drv, proc } = world();
    dev.startLogging([{ iova: 0n, length: 0x100000n }], PAGE);
    drv.dma(3n * PAGE);
    const m = BigInt(proc.mmap(undefined, 0x1000).ret);
    proc.write(m, Uint8Array.from([0x81, 0, 0xff]));
    const rep = u64s(0n, 0x100000n, PAGE, m);
    expect(dev.feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, rep).ok).toBe(true);
    expect(Array.from(proc.read(m, 4)!)).toEqual([0x89, 0, 0xff, 0]);
  });

  test("a read-only bitmap: 6.12 drops the bits and succeeds (the driver still cleared them); 6.1 fails EFAULT first", () => {
    for (const [profile, want] of [[VFIO_CORE_LINUX_6_12, { ret: 0, errno: 0 }], [VFIO_CORE_LINUX_6_1, { ret: -1, errno: Errno.EFAULT }]] as const) {
      const { dev, drv, proc } = world(profile);
      dev.startLogging([{ iova: 0n, length: 0x100000n }], PAGE);
      drv.dma(5n * PAGE);
      const m = BigInt(proc.mmap(undefined, 0x1000).ret);
      proc.mprotect(m, 0x1000, PROT_READ);
      const rep = u64s(0n, 0x100000n, PAGE, m);
      const r = dev.feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, rep);
      expect(r.ok ? { ret: 0, errno: 0 } : { ret: -1, errno: r.errno }).toEqual(want);
      expect(Array.from(proc.read(m, 1)!)).toEqual([0]);
      expect(drv.dirty.size).toBe(profile === VFIO_CORE_LINUX_6_12 ? 0 : 1);
    }
  });
});

test("6.1: the driver reads and clears chunk by chunk; an unpinnable bitmap page past the first chunk fails EFAULT after the chunks before it", () => {
  const { dev, drv, proc } = world(VFIO_CORE_LINUX_6_1);
  // 513 bitmap pages of 4 KiB cover 513 * 32768 pages of 4 KiB of IOVA; the 513th is read-only.
  const len = 513n * 32768n * PAGE;
  expect(dev.startLogging([{ iova: 0n, length: len }], PAGE).ok).toBe(true);
  drv.dma(7n * PAGE); // in chunk 1
  drv.dma(512n * 32768n * PAGE + PAGE); // in chunk 2 (the read-only page)
  const m = BigInt(proc.mmap(undefined, 513 * 4096).ret);
  proc.mprotect(m + 512n * 4096n, 4096, PROT_READ);
  const r = dev.feature(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, u64s(0n, len, PAGE, m));
  expect(r).toMatchObject(err(Errno.EFAULT));
  expect(Array.from(proc.read(m, 1)!)).toEqual([0x80]); // chunk 1 reported
  expect([...drv.dirty]).toEqual([512n * 32768n * PAGE + PAGE]); // chunk 2 never read
});
