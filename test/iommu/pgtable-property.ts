/**
 * The random-sequence driver of the page-table property tests (shared by the Jest test
 * and by ad-hoc runs: it throws with context instead of using Jest's expect).
 */
import { WasmCore } from "../../src/wasm/core";
import { Bitmap } from "../../src/bitmap";
import { Rng } from "../../src/util/random";
import {
  IoPageTable, IotlbGather, DirtyTarget, PtFormat, PT_FORMATS, IOMMU_READ, IOMMU_WRITE, IOMMU_DIRTY_NO_CLEAR,
  pgsizeRange, PGSIZES_4K_2M_1G,
} from "../../src/iommu/pgtable";
import { RefTable, refRecord } from "./pgtable-reference";

function expect<T>(a: T): { toBe(b: T): void; not: { toBeNull(): void } } {
  return {
    toBe(b: T): void {
      if (a !== b) throw new Error(`expected ${String(b)}, got ${String(a)}`);
    },
    not: {
      toBeNull(): void {
        if (a === null) throw new Error("expected a value, got null");
      },
    },
  };
}

const G = 4096;
const SPACE = 2 ** 31; // IOVAs drawn from [0, 2 GiB)

export const counters = { sequences: 0, steps: 0 };

function pgsizesFor(f: PtFormat): number {
  // AMD: every power of two up to 1 GiB (replicated PTEs for the in-between sizes).
  return f === "amd-v1" ? pgsizeRange(12, 30) : PGSIZES_4K_2M_1G;
}

function randomMapArgs(rng: Rng): { iova: number; pa: number; size: number } {
  const align = rng.chance(0.4) ? 2 ** 21 : rng.chance(0.5) ? 2 ** (12 + rng.int(9)) : G;
  const iova = Math.floor(rng.int(SPACE) / align) * align;
  const pa = Math.floor(rng.int(2 ** 40) / align) * align;
  const size = rng.chance(0.3) ? (1 + rng.int(4)) * 2 ** 21 : (1 + rng.int(600)) * G;
  return { iova, pa, size: Math.min(size, SPACE - iova) };
}

function check(pt: IoPageTable, ref: RefTable, rng: Rng, core: WasmCore): void {
  for (const [pg, leaf] of ref.pages) {
    if (rng.chance(0.85) && ref.pages.size > 400) continue;
    const iova = pg * G + rng.int(G);
    const info = pt.lookup(iova);
    expect(info).not.toBeNull();
    expect(info!.phys).toBe(leaf.pa + (iova - leaf.iova));
    expect(info!.leafSize).toBe(leaf.size);
    expect(info!.leafIova).toBe(leaf.iova);
  }
  for (let i = 0; i < 20; i++) {
    const iova = rng.int(SPACE);
    expect(pt.iovaToPhys(iova)).toBe(ref.iovaToPhys(iova));
  }
  expect(pt.tablePages).toBe(ref.expectedTables());
  void core;
}

export function runSequence(format: PtFormat, seed: number, STEPS = 150): void {
  const core = new WasmCore();
  const rng = new Rng(seed * 7919 + PT_FORMATS.indexOf(format));
  const pgsizes = pgsizesFor(format);
  const pt = IoPageTable.create(core, { format, pgsizeBitmap: pgsizes, levels: format === "amd-v1" ? 3 : 4, hardwareDirty: true })!;
  const ref = new RefTable(format, pgsizes, () => pt.levels, true);
  const g = IotlbGather.create(core)!;
  const t = DirtyTarget.create(core)!;
  const baseline = core.x.ptPagesInUse();
  if (format !== "arm-lpae-s1") {
    pt.setTracking(true);
    ref.tracking = true;
  }
  for (let step = 0; step < STEPS; step++) {
    counters.steps++;
    const op = rng.int(100);
    if (op < 30) {
      const { iova, pa, size } = randomMapArgs(rng);
      const prot = rng.chance(0.8) ? IOMMU_READ | IOMMU_WRITE : IOMMU_READ;
      const r = pt.map(iova, pa, size, prot, g);
      expect(r).toBe(ref.map(iova, pa, size, (prot & IOMMU_WRITE) !== 0));
      g.release();
    } else if (op < 45) {
      const leaves = [...ref.leaves.values()];
      const start = leaves.length && rng.chance(0.8) ? leaves[rng.int(leaves.length)].iova + G * rng.int(4) : rng.int(SPACE / G) * G;
      const size = (1 + rng.int(1200)) * G;
      const want = ref.unmap(start, size);
      expect(pt.unmap(start, size, g)).toBe(want);
      if (want > 0) expect(g.empty).toBe(false);
      g.release();
    } else if (op < 75) {
      // DMA writes, mostly to mapped pages.
      const pages = [...ref.pages.keys()];
      for (let k = 0; k < 1 + rng.int(30); k++) {
        const iova = pages.length && rng.chance(0.9) ? pages[rng.int(pages.length)] * G + rng.int(G) : rng.int(SPACE);
        expect(pt.deviceAccess(iova, true)).toBe(ref.write(iova));
      }
    } else if (op < 80 && format !== "arm-lpae-s1") {
      const on = rng.chance(0.7);
      pt.setTracking(on);
      ref.tracking = on;
    } else {
      // Harvest a range into a bitmap: page size 4 KiB or larger, sometimes NO_CLEAR.
      const leaves = [...ref.leaves.values()];
      let start: number;
      let len: number;
      if (format === "arm-lpae-s1") {
        // ARM fails on holes: harvest one mapped run (a leaf and its neighbours).
        if (!leaves.length) continue;
        const l = leaves[rng.int(leaves.length)];
        start = l.iova;
        let end = l.iova + l.size;
        while (ref.leafAt(end) && end - start < 64 * 2 ** 20) end = ref.leafAt(end)!.iova + ref.leafAt(end)!.size;
        len = end - start;
        if (rng.chance(0.3) && len > G) {
          const cut = G * rng.int(len / G);
          start += cut; // unaligned start inside a leaf: whole-leaf over-reporting
          len -= cut;
        }
      } else {
        start = rng.chance(0.5) ? 0 : Math.floor(rng.int(SPACE) / 2 ** 30) * 2 ** 30;
        len = Math.min(SPACE - start, (1 + rng.int(2)) * 2 ** 30);
      }
      const pageSize = rng.chance(0.7) ? G : 2 ** (12 + 1 + rng.int(9));
      const nbits = Math.ceil(len / pageSize);
      const flags = rng.chance(0.3) ? IOMMU_DIRTY_NO_CLEAR : 0;
      const bm = Bitmap.create(core, nbits)!;
      t.setBitmap(bm, start, pageSize);
      const want = new Uint8Array(Math.ceil(nbits / 64) * 8);
      const wr = ref.readDirty(start, len, flags !== 0, (i, n) => refRecord(want, nbits, start, pageSize, i, n));
      const r = pt.readAndClearDirty(start, len, flags, t, g);
      expect(r).toBe(wr);
      expect(Buffer.from(bm.toBytes()).equals(Buffer.from(want))).toBe(true);
      if (flags & IOMMU_DIRTY_NO_CLEAR) {
        // A second NO_CLEAR read sees the same bits.
        bm.clear();
        t.setBitmap(bm, start, pageSize);
        pt.readAndClearDirty(start, len, flags, t, g);
        expect(Buffer.from(bm.toBytes()).equals(Buffer.from(want))).toBe(true);
      }
      g.release();
      bm.dispose();
    }
    check(pt, ref, rng, core);
  }
  // Unmapping everything returns every table page but the root.
  const total = [...ref.leaves.values()].reduce((a, l) => a + l.size, 0);
  let unmapped = 0;
  for (const l of [...ref.leaves.values()]) unmapped += pt.unmap(l.iova, l.size, g);
  g.release();
  expect(unmapped).toBe(total);
  expect(pt.tablePages).toBe(1);
  expect(core.x.ptPagesInUse()).toBe(baseline);
  counters.sequences++;
}

