/**
 * The unmap/IOTLB race of the 2022 RFC ("iommu: Add an unmap API that returns dirtied
 * IOPTEs"): iommu_unmap_read_dirty reads and clears the PTEs, then flushes the IOTLB; a
 * DMA write through a translation the device still caches, landing between the clear and
 * the flush, completes but its dirty bit has no PTE to go to. The sequence that closes it
 * (write-protect, flush, read-and-clear, unmap) loses nothing, across many interleavings.
 */
import { WasmCore } from "../../src/wasm/core";
import { Bitmap } from "../../src/bitmap";
import { Rng } from "../../src/util/random";
import { DirtyTarget, PT_FORMATS, PtFormat, IOMMU_READ, IOMMU_WRITE, PGSIZES_4K_2M_1G } from "../../src/iommu/pgtable";
import { PgtableDomain, DmaDevice, DMA_OK, DMA_FAULT_PERM } from "../../src/iommu/hw";

const G = 4096;
const RW = IOMMU_READ | IOMMU_WRITE;
const BASE = 0x100_0000;

interface Rig {
  core: WasmCore;
  dom: PgtableDomain;
  dev: DmaDevice;
  bm: Bitmap;
  t: DirtyTarget;
}

function rig(format: PtFormat, pages: number, pgsizes?: number): Rig {
  const core = new WasmCore();
  const dom = PgtableDomain.create(core, { format, dirtyTracking: true, pgsizeBitmap: pgsizes ?? PGSIZES_4K_2M_1G })!;
  expect(dom.setDirtyTracking(true)).toBe(0);
  expect(dom.map(BASE, 0x8000_0000, pages * G, RW)).toBe(0);
  const dev = new DmaDevice();
  dev.attach(dom);
  const bm = Bitmap.create(core, pages)!;
  const t = DirtyTarget.create(core)!;
  t.setBitmap(bm, BASE, G);
  // Start from a clean snapshot (ARM maps start writable-dirty), as iommufd does on enable.
  const g = dom.newGather()!;
  expect(dom.readAndClearDirty(BASE, pages * G, 0, null, g)).toBe(0);
  dom.iotlbSync(g);
  g.dispose();
  return { core, dom, dev, bm, t };
}

describe.each(PT_FORMATS.map((f) => [f]))("%s", (format) => {
  const f = format as PtFormat;

  test("unmap_read_dirty loses a write through a stale IOTLB entry between PTE clear and flush", () => {
    const { dom, dev, bm, t } = rig(f, 16);
    const P = BASE + 5 * G;
    expect(dev.read(P, 8)).toBe(DMA_OK); // the device caches the translation (clean)
    expect(dom.iotlb.lookup(P)).toBeDefined();
    const g = dom.newGather()!;
    expect(dom.unmapReadDirtyFast(BASE, 16 * G, t, g)).toBe(16 * G);
    // PTEs are gone, the IOTLB is not flushed yet: the write goes through.
    expect(dom.iovaToPhys(P)).toBe(-1);
    expect(dev.write(P, 8)).toBe(DMA_OK);
    expect(dev.stats.lostDirtyUpdates).toBe(1);
    dom.iotlbSync(g);
    // ...and nothing reports it.
    expect(bm.test(5)).toBe(false);
    expect(bm.popcount()).toBe(0);
    // After the flush the device faults.
    expect(dev.write(P, 8)).not.toBe(DMA_OK);
  });

  test("a write before the clear is reported by unmap_read_dirty (the API works without the race)", () => {
    const { dom, dev, bm, t } = rig(f, 16);
    expect(dev.write(BASE + 3 * G, 8)).toBe(DMA_OK);
    expect(dom.unmapReadDirty(BASE, 16 * G, t)).toBe(16 * G);
    expect([...bm.setBits()]).toEqual([3]);
  });

  test("write-protect, flush, read-and-clear, unmap: the stale-entry write faults instead", () => {
    const { dom, dev, bm, t } = rig(f, 16);
    const P = BASE + 5 * G;
    const Q = BASE + 9 * G;
    expect(dev.read(P, 8)).toBe(DMA_OK); // clean cached entry
    expect(dev.write(Q, 8)).toBe(DMA_OK); // dirty cached entry
    const seen: number[] = [];
    dom.unmapSafeReadDirty(BASE, 16 * G, t, (step) => {
      if (step === "protected") {
        seen.push(dev.write(P, 8)); // clean entry: the dirty update finds a read-only PTE
        seen.push(dev.write(Q, 8)); // dirty entry: goes through, Q was collected by write-protect
      }
      if (step === "flushed" || step === "read") seen.push(dev.write(P, 8));
    });
    expect(seen).toEqual([DMA_FAULT_PERM, DMA_OK, DMA_FAULT_PERM, DMA_FAULT_PERM]);
    expect([...bm.setBits()]).toEqual([9]);
    expect(dom.iovaToPhys(P)).toBe(-1);
  });

  test("no write is lost by the safe sequence across 400 random interleavings; unmap_read_dirty loses some", () => {
    const rng = new Rng(0x5eed + PT_FORMATS.indexOf(f));
    const pages = 64;
    let safeLost = 0;
    let rfcLost = 0;
    let writesChecked = 0;
    for (let trial = 0; trial < 400; trial++) {
      const huge = rng.chance(0.3);
      const { core, dom, dev, bm, t } = rig(f, huge ? 1024 : pages, huge ? 2 ** 12 + 2 ** 21 : undefined);
      const n = huge ? 1024 : pages;
      const written = new Set<number>();
      const activity = (k: number): void => {
        for (let i = 0; i < k; i++) {
          const pg = rng.int(n);
          if (rng.chance(0.5)) dev.read(BASE + pg * G, 8);
          else if (dev.write(BASE + pg * G, 8) === DMA_OK) written.add(pg);
        }
      };
      activity(rng.int(40));
      const useSafe = trial % 2 === 0;
      if (useSafe) {
        dom.unmapSafeReadDirty(BASE, n * G, t, () => activity(rng.int(6)));
      } else {
        const g = dom.newGather()!;
        dom.unmapReadDirtyFast(BASE, n * G, t, g);
        activity(rng.int(6));
        dom.iotlbSync(g);
        g.dispose();
      }
      activity(4); // after the sequence every access faults
      let lost = 0;
      for (const pg of written) if (!bm.test(pg)) lost++;
      writesChecked += written.size;
      if (useSafe) safeLost += lost;
      else rfcLost += lost;
      dom.destroy();
      void core;
    }
    expect(writesChecked).toBeGreaterThan(1000);
    expect(safeLost).toBe(0);
    expect(rfcLost).toBeGreaterThan(0);
  });
});
