/**
 * QEMU's DMA-logging range computation and device-logging choice (src/migrate/dma-logging-ranges.ts):
 * a typical x86 layout, the pci-hole64 span, the straddling and boundary cases of
 * vfio_dirty_tracking_update_range, a property test (every section covered, at most three
 * ranges, each span tight on its sections, disjoint when no BAR sits inside RAM), the
 * choice rule, and the ranges fed to an mlx5-like VF's START.
 */
import { Process } from "../../src/process";
import { Rng } from "../../src/util/random";
import {
  qemuDirtyTrackingChoice,
  qemuDmaLoggingRanges,
  vfioDevicesAllDeviceDirtyTracking,
  vfioDirtyRangesInit,
  vfioDirtyTrackingUpdateRange,
  type DirtyTrackingSection,
} from "../../src/migrate/dma-logging-ranges";
import { Mlx5Device, VfioCoreDevice, VfioDevice, installVfioDevice } from "../../src/vfio";

const G = 1n << 30n;
const sec = (iova: bigint, size: bigint, vfioPci = false): DirtyTrackingSection => ({ iova, end: iova + size - 1n, vfioPci });

describe("QEMU DMA logging ranges", () => {
  test("x86 guest: RAM below and above 4 GiB, a vfio-pci BAR in pci-hole64 -> three ranges", () => {
    const sections = [
      sec(0n, 0xa0000n), // low RAM
      sec(0x100000n, 2n * G - 0x100000n),
      sec(0xfd000000n, 0x1000000n, true), // a 32-bit BAR: part of the 32-bit span
      sec(4n * G, 30n * G),
      sec(0x38000000000n, 0x200000n, true), // OVMF's relocated pci-hole64
    ];
    expect(qemuDmaLoggingRanges(sections)).toEqual([
      { iova: 0n, length: 0xfe000000n },
      { iova: 4n * G, length: 30n * G },
      { iova: 0x38000000000n, length: 0x200000n },
    ]);
  });

  test("no sections: no ranges (START would then fail EINVAL in the kernel)", () => {
    expect(qemuDmaLoggingRanges([])).toEqual([]);
  });

  test("boundaries: end == UINT32_MAX is 32-bit, a straddler is 64-bit, a PCI BAR below 4 GiB is 32-bit", () => {
    let r = vfioDirtyTrackingUpdateRange(vfioDirtyRangesInit(), 0xfffff000n, 0xffffffffn, false);
    expect([r.min32, r.max32, r.max64]).toEqual([0xfffff000n, 0xffffffffn, 0n]);
    r = vfioDirtyTrackingUpdateRange(vfioDirtyRangesInit(), 0xfffff000n, 0x100000fffn, false);
    expect([r.min64, r.max64, r.max32]).toEqual([0xfffff000n, 0x100000fffn, 0n]);
    r = vfioDirtyTrackingUpdateRange(vfioDirtyRangesInit(), 0xfe000000n, 0xfe0fffffn, true);
    expect([r.min32, r.max32, r.maxpci64]).toEqual([0xfe000000n, 0xfe0fffffn, 0n]);
    // A BAR starting exactly at UINT32_MAX counts as pci64 (iova >= UINT32_MAX).
    r = vfioDirtyTrackingUpdateRange(vfioDirtyRangesInit(), 0xffffffffn, 0x100000ffen, true);
    expect([r.minpci64, r.maxpci64]).toEqual([0xffffffffn, 0x100000ffen]);
  });

  test("a section at iova 0 ending at 0 is dropped (max32 == 0 means none): QEMU's quirk", () => {
    expect(qemuDmaLoggingRanges([{ iova: 0n, end: 0n }])).toEqual([]);
  });

  test("property: at most three ranges, every section covered, spans tight, disjoint without BARs in RAM", () => {
    const rng = new Rng(31337);
    for (let t = 0; t < 500; t++) {
      const sections: DirtyTrackingSection[] = [];
      const n = 1 + rng.int(8);
      for (let i = 0; i < n; i++) {
        const kind = rng.int(3);
        const size = BigInt(1 + rng.int(1 << 16)) * 4096n;
        if (kind === 0) sections.push(sec(BigInt(rng.int(1 << 20)) * 4096n % (3n * G), size > G ? G : size));
        else if (kind === 1) sections.push(sec(4n * G + BigInt(rng.int(1 << 20)) * 4096n, size));
        else sections.push(sec(0x38000000000n + BigInt(rng.int(1 << 10)) * 4096n * 16n, size, true));
      }
      const out = qemuDmaLoggingRanges(sections);
      expect(out.length).toBeLessThanOrEqual(3);
      for (const s of sections) expect(out.some((r) => r.iova <= s.iova && r.iova + r.length - 1n >= s.end)).toBe(true);
      for (const r of out) {
        expect(sections.some((s) => s.iova === r.iova)).toBe(true);
        expect(sections.some((s) => s.end === r.iova + r.length - 1n)).toBe(true);
      }
      const sorted = [...out].sort((a, b) => (a.iova < b.iova ? -1 : 1));
      for (let i = 1; i < sorted.length; i++) expect(sorted[i].iova > sorted[i - 1].iova + sorted[i - 1].length - 1n).toBe(true);
    }
  });
});

describe("QEMU's choice rule", () => {
  test("device logging only when every device supports it and none is switched off", () => {
    const yes = { dirtyPagesSupported: true };
    const no = { dirtyPagesSupported: false };
    expect(vfioDevicesAllDeviceDirtyTracking([yes, yes])).toBe(true);
    expect(vfioDevicesAllDeviceDirtyTracking([yes, no])).toBe(false);
    expect(vfioDevicesAllDeviceDirtyTracking([yes, { dirtyPagesSupported: true, deviceDirtyPageTracking: "off" }])).toBe(false);
    expect(vfioDevicesAllDeviceDirtyTracking([])).toBe(true);
    expect(qemuDirtyTrackingChoice([yes, no], true)).toBe("container");
    expect(qemuDirtyTrackingChoice([yes, no], false)).toBe("none");
    expect(qemuDirtyTrackingChoice([yes], false)).toBe("device");
  });
});

describe("QEMU's ranges into an mlx5-like VF", () => {
  function mlx5(maxNumRange: number) {
    const proc = new Process();
    const drv = new Mlx5Device({ caps: { maxNumRange } });
    installVfioDevice(proc, "/dev/vfio/devices/vfio0", new VfioCoreDevice(drv));
    const d = VfioDevice.open(proc, "/dev/vfio/devices/vfio0");
    if (!d.ok) throw new Error("open");
    return { dev: d.value, drv };
  }
  const sections = [sec(0n, 2n * G), sec(4n * G, 30n * G), sec(0x38000000000n, 0x200000n, true)];

  test("three ranges fit a device taking four; a mapping added after START is not logged", () => {
    const { dev, drv } = mlx5(4);
    expect(dev.startLogging(qemuDmaLoggingRanges(sections), 4096n).ok).toBe(true);
    expect(drv.armed.length).toBe(3);
    expect(drv.dma(5n * G, 8n, true)).toBe("logged");
    expect(drv.dma(40n * G, 8n, true)).toBe("untracked"); // hot-added RAM above the 64-bit span
  });

  test("a device taking two merges QEMU's three itself, across the smallest gap (2-4 GiB)", () => {
    const { dev, drv } = mlx5(2);
    expect(dev.startLogging(qemuDmaLoggingRanges(sections), 4096n).ok).toBe(true);
    expect(drv.armed).toEqual([
      { start: 0n, end: 34n * G - 1n },
      { start: 0x38000000000n, end: 0x38000000000n + 0x200000n - 1n },
    ]);
    expect(drv.dma(3n * G, 8n, true)).toBe("logged"); // the 32-bit PCI hole, now inside a range
  });
});
