import { WasmCore } from "../../src/wasm/core";
import { Rng } from "../../src/util/random";
import {
  IoPageTable, IotlbGather, DirtyTarget, PT_FORMATS, IOMMU_READ, IOMMU_WRITE, IOMMU_DIRTY_NO_CLEAR, pgsizeRange, PGSIZES_4K_2M_1G,
  type PtFormat,
} from "../../src/iommu/pgtable";

// The atomic harvest (ptReadDirtyAtomic) must report, clear and gather exactly what the
// single-threaded v128 harvest (ptReadDirty) does: same tables built twice on one shared
// core, same dirty PTEs, both harvests over random ranges into random unaligned windows.

const G = 4096;
const SPACE = 2 ** 28;

function pgsizesFor(f: PtFormat): number {
  return f === "amd-v1" ? pgsizeRange(12, 30) : PGSIZES_4K_2M_1G;
}

function build(core: WasmCore, f: PtFormat): { pt: IoPageTable; g: IotlbGather } {
  const pt = IoPageTable.create(core, { format: f, pgsizeBitmap: pgsizesFor(f), hardwareDirty: f === "arm-lpae-s1" })!;
  pt.setTracking(true);
  return { pt, g: IotlbGather.create(core)! };
}

function pteState(core: WasmCore, pt: IoPageTable, iovas: number[]): string {
  return iovas.map((i) => {
    const l = pt.lookup(i);
    return l ? `${l.pteLo}:${l.pteHi}` : "-";
  }).join(",");
}

test.each(PT_FORMATS)("%s: the atomic harvest reports, clears and gathers what the v128 harvest does", (f) => {
  const core = WasmCore.createShared();
  const atomics = core.atomics!;
  let harvests = 0;
  let dirtyBits = 0;
  for (let seed = 1; seed <= 12; seed++) {
    const rng = new Rng(seed * 7919 + f.length);
    const a = build(core, f);
    const b = build(core, f);
    const touched: number[] = [];
    for (let m = 0; m < 6; m++) {
      const align = rng.chance(0.3) ? 2 ** 21 : rng.chance(0.5) ? 2 ** (12 + rng.int(9)) : G;
      const iova = Math.floor(rng.int(SPACE) / align) * align;
      const size = Math.min(rng.chance(0.3) ? (1 + rng.int(3)) * 2 ** 21 : (1 + rng.int(1500)) * G, SPACE - iova);
      const pa = Math.floor(rng.int(2 ** 36) / align) * align;
      const prot = rng.chance(0.8) ? IOMMU_READ | IOMMU_WRITE : IOMMU_READ;
      const ra = a.pt.map(iova, pa, size, prot, a.g);
      expect(b.pt.map(iova, pa, size, prot, b.g)).toBe(ra);
      a.g.release();
      b.g.release();
      if (ra === 0) for (let k = 0; k < 40; k++) touched.push(iova + rng.int(size));
    }
    for (let round = 0; round < 4; round++) {
      for (const i of touched) {
        if (!rng.chance(0.5)) continue;
        const sa = atomics.ptDeviceAccessAtomic(a.pt.ptr, i, 1, 0);
        expect(sa === 3 ? 0 : sa).toBe(b.pt.deviceAccess(i, true));
      }
      const nbits = 1 + rng.int(80_000);
      const base = Math.floor(rng.int(SPACE) / G) * G;
      const off = rng.int(64);
      const size = Math.min(rng.chance(0.5) ? SPACE - base : (1 + rng.int(nbits)) * G, SPACE - base);
      const flags = rng.chance(0.2) ? IOMMU_DIRTY_NO_CLEAR : 0;
      const maps = [a, b].map(() => core.alloc(Math.ceil((nbits + off) / 64) * 8 + 8));
      const targets = maps.map((m) => {
        const t = DirtyTarget.create(core)!;
        t.setWindow(m, base, G, off, nbits + off);
        return t;
      });
      a.pt.setConcurrentDevices(true);
      const ra = a.pt.readAndClearDirty(base, size, flags, targets[0], a.g);
      const rb = b.pt.readAndClearDirty(base, size, flags, targets[1], b.g);
      expect(ra).toBe(rb);
      const bytes = Math.ceil((nbits + off) / 64) * 8;
      expect(Buffer.from(core.u8.subarray(maps[0], maps[0] + bytes)).equals(Buffer.from(core.u8.subarray(maps[1], maps[1] + bytes)))).toBe(true);
      dirtyBits += core.x.popcountRange(maps[0], 0, nbits + off);
      expect([targets[0].spillStart, targets[0].spillEnd]).toEqual([targets[1].spillStart, targets[1].spillEnd]);
      expect([a.g.start, a.g.end]).toEqual([b.g.start, b.g.end]);
      expect(pteState(core, a.pt, touched)).toBe(pteState(core, b.pt, touched));
      a.g.release();
      b.g.release();
      targets.forEach((t) => t.dispose());
      maps.forEach((m) => core.free(m));
      harvests++;
    }
    a.pt.destroy();
    b.pt.destroy();
    a.g.dispose();
    b.g.dispose();
  }
  expect(harvests).toBe(48);
  expect(dirtyBits).toBeGreaterThan(0);
});

test("the atomic harvest is refused on a core that is not shared", () => {
  const pt = IoPageTable.create(new WasmCore(), { format: "intel-ss" })!;
  expect(pt.setConcurrentDevices(true)).toBe(false);
  expect(pt.concurrentDevices).toBe(false);
  pt.destroy();
});
