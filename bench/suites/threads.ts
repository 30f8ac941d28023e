/**
 * What atomicity costs the harvest: read-and-clear of 4 Mi present 4 KiB PTEs (32 MiB of
 * PTEs) per format on the shared-memory core, with the single-threaded v128 pass
 * (ptReadDirty: loads 16 PTEs, stores them back clean) as the baseline and the per-PTE
 * atomic pass (ptReadDirtyAtomic: test_and_clear_bit, ARM test then set_bit) against it.
 * GB/s are bytes of PTEs.
 * - benchmark.js cases: steady state, every PTE clean (each pass still reads and clears
 *   every PTE: AMD and Intel clear unconditionally, as their drivers do).
 * - extras: half of the PTEs dirty at random, restored from a snapshot before each timed
 *   call (one memory.copy), caches evicted first; medians of 7 calls per process.
 * The same v128 pass on the default (private-memory) core is in the pgtable suite.
 */
import type { BenchCase, BenchSuite } from "../lib/harness";
import { median } from "../lib/harness";
import { WasmCore } from "../../src/wasm/core";
import { Bitmap } from "../../src/bitmap";
import { Rng } from "../../src/util/random";
import { IoPageTable, IotlbGather, DirtyTarget, PtFormat, PT_FORMATS, IOMMU_READ, IOMMU_WRITE } from "../../src/iommu/pgtable";

const G = 4096;
const NPTE = 4 * 1024 * 1024;
const PTE_BYTES = NPTE * 8;
const LEN = NPTE * G;
const EVICT_BYTES = 64 * 2 ** 20;

interface Setup {
  format: PtFormat;
  pt: IoPageTable;
  target: DirtyTarget;
  gather: IotlbGather;
  region: number;
  regionBytes: number;
  snapshot: number;
}

let core: WasmCore;
let evict = 0;
const setups: Setup[] = [];

function build(): void {
  // Heap blocks first, then all the mapping, so each table's pages are contiguous.
  const pre = PT_FORMATS.map((format) => {
    const bm = Bitmap.create(core, NPTE);
    const target = DirtyTarget.create(core);
    const gather = IotlbGather.create(core);
    const snapshot = core.alloc(PTE_BYTES + 64 * G, false);
    if (!bm || !target || !gather || !snapshot) throw new Error("bench: out of Wasm memory");
    target.setBitmap(bm, 0, G);
    return { format, target, gather, snapshot };
  });
  evict = core.alloc(EVICT_BYTES, false);
  const tables = pre.map((p) => {
    const pt = IoPageTable.create(core, { format: p.format, pgsizeBitmap: G, hardwareDirty: true });
    if (!pt || pt.map(0, 0x10_0000_0000, LEN, IOMMU_READ | IOMMU_WRITE, p.gather) !== 0) throw new Error("bench: map failed");
    p.gather.release();
    return pt;
  });
  pre.forEach((p, i) => {
    const pt = tables[i];
    if (p.format !== "arm-lpae-s1") pt.setTracking(true);
    pt.readAndClearDirty(0, LEN, 0, null, p.gather); // ARM maps start dirty
    p.gather.release();
    const rng = new Rng(7);
    for (let iova = 0; iova < LEN; iova += G) if (rng.chance(0.5)) pt.setDirty(iova);
    const a = pt.lookup(0)!.ptePtr;
    const b = pt.lookup(LEN - G)!.ptePtr;
    const region = a - (a % G);
    const regionBytes = b - (b % G) + G - region;
    if (regionBytes > PTE_BYTES * 1.01 + 2 * G) throw new Error("bench: tables are not contiguous");
    core.x.copyBytes(p.snapshot, region, regionBytes);
    setups.push({ format: p.format, pt, target: p.target, gather: p.gather, region, regionBytes, snapshot: p.snapshot });
  });
}

function harvest(s: Setup, atomic: boolean): void {
  s.pt.setConcurrentDevices(atomic);
  s.pt.readAndClearDirty(0, LEN, 0, s.target, s.gather);
  s.gather.release();
}

function seconds(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const suite: BenchSuite = {
  name: "threads",
  description: "harvest read-and-clear: per-PTE atomics vs the v128 load/store pass (shared-memory core)",
  runs: 5,
  maxTime: 0.25,
  cases(): BenchCase[] {
    core = WasmCore.createShared();
    build();
    const cases: BenchCase[] = [];
    for (const s of setups) {
      const group = `4Mi 4K PTEs ${s.format} read-and-clear, clean`;
      cases.push({ group, name: "v128 load/store (not thread-safe)", bytes: PTE_BYTES, baseline: true, fn: () => harvest(s, false) });
      cases.push({ group, name: "atomic RMW per PTE", bytes: PTE_BYTES, fn: () => harvest(s, true) });
    }
    return cases;
  },
  extras(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of setups) {
      const t: Record<"v128" | "atomic", number[]> = { v128: [], atomic: [] };
      for (let i = 0; i < 7; i++) {
        for (const kind of ["v128", "atomic"] as const) {
          core.x.copyBytes(s.region, s.snapshot, s.regionBytes);
          core.x.scanXor(evict, EVICT_BYTES);
          t[kind].push(seconds(() => harvest(s, kind === "atomic")));
        }
      }
      const v = PTE_BYTES / median(t.v128) / 1e9;
      const a = PTE_BYTES / median(t.atomic) / 1e9;
      out[`${s.format}.half_dirty_v128_GBps`] = +v.toFixed(3);
      out[`${s.format}.half_dirty_atomic_GBps`] = +a.toFixed(3);
      out[`${s.format}.half_dirty_atomic_vs_v128`] = +(a / v).toFixed(3);
    }
    return out;
  },
};

export default suite;
