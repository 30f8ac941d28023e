/**
 * DmaDevice's batched walk of a range no IOTLB entry covers must leave exactly what the
 * leaf-by-leaf walk leaves: access status, PTE accessed/dirty state (seen through the dirty
 * harvest), the IOTLB's entries and counters, the device's counters. Random sequences of
 * DMA, dirty harvests with and without the IOTLB sync, and unmaps with a late flush (stale
 * translations) on twin domains, one of them with the batch turned off.
 */
import { WasmCore } from "../../src/wasm/core";
import { Bitmap } from "../../src/bitmap";
import { Rng } from "../../src/util/random";
import { DirtyTarget, PT_FORMATS, PtFormat, IOMMU_READ, IOMMU_WRITE, PGSIZES_4K_2M_1G } from "../../src/iommu/pgtable";
import { PgtableDomain, DmaDevice } from "../../src/iommu/hw";

const G = 4096;
const BASE = 0x4000_0000;
const SPAN = 8 * 2 ** 20; // 4 MiB mapped with 2 MiB leaves, then 4 MiB of 4 KiB leaves

interface Twin {
  dom: PgtableDomain;
  dev: DmaDevice;
  bm: Bitmap;
  t: DirtyTarget;
}

function twin(format: PtFormat, batch: boolean): Twin {
  const core = new WasmCore();
  const dom = PgtableDomain.create(core, { format, dirtyTracking: true, pgsizeBitmap: PGSIZES_4K_2M_1G, iotlbEntries: 8 })!;
  expect(dom.setDirtyTracking(true)).toBe(0);
  expect(dom.map(BASE, 0x8000_0000, SPAN / 2, IOMMU_READ | IOMMU_WRITE)).toBe(0);
  for (let off = SPAN / 2; off < SPAN; off += G) expect(dom.map(BASE + off, 0x8000_0000 + off, G, IOMMU_READ | IOMMU_WRITE)).toBe(0);
  const dev = new DmaDevice();
  dev.batchWalk = batch;
  dev.attach(dom);
  const bm = Bitmap.create(core, SPAN / G)!;
  const t = DirtyTarget.create(core)!;
  t.setBitmap(bm, BASE, G);
  return { dom, dev, bm, t };
}

/** What the two must agree on after every step. */
function state(x: Twin) {
  return {
    iotlb: x.dom.iotlb.list().map((e) => ({ ...e })),
    iotlbStats: { ...x.dom.iotlb.stats },
    dev: { ...x.dev.stats },
  };
}

describe.each(PT_FORMATS.map((f) => [f]))("%s: batched DMA walk = leaf-by-leaf walk", (format) => {
  test.each([1, 2])("random sequence, seed %d", (seed) => {
    const rng = new Rng(0xba7c + seed);
    const a = twin(format as PtFormat, true);
    const b = twin(format as PtFormat, false);
    // Count the accesses that took the batched path (no overlapping entry).
    let batched = 0;
    const overlaps = a.dom.iotlb.overlaps.bind(a.dom.iotlb);
    a.dom.iotlb.overlaps = (s, l) => (overlaps(s, l) ? true : (batched++, false));
    let harvested = 0;
    for (let step = 0; step < 400; step++) {
      const op = rng.int(10);
      const results = [a, b].map((x) => {
        const r = new Rng(seed * 1000 + step); // same operands for both twins
        const iova = BASE + r.int(SPAN / G) * G - (r.chance(0.05) ? G : 0);
        const len = r.chance(0.5) ? (1 + r.int(64)) * G : 1 + r.int(3 * G);
        if (op <= 5) return x.dev.write(iova, len);
        if (op === 6) return x.dev.read(iova, len);
        const g = x.dom.newGather()!;
        let ret: number;
        if (op === 7 || op === 8) {
          x.bm.clear();
          ret = x.dom.readAndClearDirty(BASE, SPAN, 0, x.t, g);
          // op 8 forgets the flush: cached dirty translations outlive the clear.
          if (op === 7) x.dom.iotlbSync(g);
        } else {
          // Unmap a 4 KiB page, write through the stale entry, flush, map it back.
          const page = BASE + SPAN / 2 + r.int(SPAN / 2 / G) * G;
          ret = x.dom.unmapFast(page, G, g);
          x.dev.write(page, 64);
          x.dom.iotlbSync(g);
          x.dom.map(page, 0x8000_0000 + (page - BASE), G, IOMMU_READ | IOMMU_WRITE);
        }
        g.dispose();
        return [ret, [...x.bm.setBits()]];
      });
      if (op === 7 || op === 8) harvested += a.bm.popcount();
      expect(results[0]).toEqual(results[1]);
      expect(state(a)).toEqual(state(b));
    }
    expect(batched).toBeGreaterThan(50);
    expect(harvested).toBeGreaterThan(0);
    // The final harvest: same dirty pages.
    for (const x of [a, b]) {
      x.bm.clear();
      const g = x.dom.newGather()!;
      x.dom.readAndClearDirty(BASE, SPAN, 0, x.t, g);
      x.dom.iotlbSync(g);
      g.dispose();
    }
    expect([...a.bm.setBits()]).toEqual([...b.bm.setBits()]);
  });
});
