/**
 * Dirty harvest from the Wasm page tables, against plain memory traffic on the same bytes
 * measured in the same process:
 * - 4 Mi present 4 KiB PTEs (32 MiB of PTEs), half of them dirty at random, per format:
 *   NO_CLEAR read (benchmark.js) vs a plain v128 read of 32 MiB; read-and-clear (extras,
 *   timed by hand because each call changes the state: the PTEs are restored from a
 *   snapshot with memory.copy between calls, and that restore copy is the baseline).
 * - a 1 TiB range mapped with 2 MiB leaves (AMD v1, 512 Ki leaves), half dirty, into a
 *   32 MiB bitmap of 4 KiB pages: NO_CLEAR and read-and-clear, reported.
 * The harvest path allocates nothing: the target and gather are created once here.
 */
import type { BenchCase, BenchSuite } from "../lib/harness";
import { median } from "../lib/harness";
import { WasmCore } from "../../src/wasm/core";
import { Bitmap } from "../../src/bitmap";
import { Rng } from "../../src/util/random";
import {
  IoPageTable, IotlbGather, DirtyTarget, PtFormat, PT_FORMATS, IOMMU_READ, IOMMU_WRITE, IOMMU_DIRTY_NO_CLEAR,
} from "../../src/iommu/pgtable";

const G = 4096;
const NPTE = 4 * 1024 * 1024;
const PTE_BYTES = NPTE * 8;
const TIB = 2 ** 40;
const M2 = 2 ** 21;

interface Setup {
  name: string;
  pt: IoPageTable;
  target: DirtyTarget;
  gather: IotlbGather;
  len: number;
  /** Bytes of PTEs the harvest reads. */
  pteBytes: number;
  /** Table-page region and its snapshot (restore = one memory.copy). */
  region: number;
  regionBytes: number;
  snapshot: number;
}

let core: WasmCore;
const setups: Setup[] = [];
let readBuf = 0;

function alignedAlloc(bytes: number, skew: number): number {
  const p = core.alloc(bytes + 2 * G, false);
  if (p === 0) throw new Error("bench: out of Wasm memory");
  return Math.ceil(p / G) * G + skew;
}

function build(format: PtFormat, leaf: number, len: number, name: string): Setup {
  const rng = new Rng(7);
  const nbits = len / G;
  // Allocate everything from the heap first so the table pages come out contiguous.
  const bm = Bitmap.create(core, nbits)!;
  const target = DirtyTarget.create(core)!;
  const gather = IotlbGather.create(core)!;
  const pt = IoPageTable.create(core, { format, pgsizeBitmap: leaf, hardwareDirty: true });
  if (!pt) throw new Error(`bench: cannot create ${name} (memory ${core.memoryBytes})`);
  if (format !== "arm-lpae-s1") pt.setTracking(true);
  if (pt.map(0, 0x10_0000_0000, len, IOMMU_READ | IOMMU_WRITE, gather) !== 0) throw new Error("bench: map failed");
  target.setBitmap(bm, 0, G);
  pt.readAndClearDirty(0, len, 0, null, gather); // ARM maps start dirty
  gather.release();
  for (let iova = 0; iova < len; iova += leaf) if (rng.chance(0.5)) pt.setDirty(iova);
  const first = pt.lookup(0)!.ptePtr - (pt.lookup(0)!.ptePtr % G);
  const lastPte = pt.lookup(len - leaf)!.ptePtr;
  const regionBytes = lastPte - (lastPte % G) + G - first;
  const snapshot = alignedAlloc(regionBytes, G / 2);
  core.x.copyBytes(snapshot, first, regionBytes);
  return { name, pt, target, gather, len, pteBytes: (len / leaf) * 8, region: first, regionBytes, snapshot };
}

function harvest(s: Setup, flags: number): void {
  s.pt.readAndClearDirty(0, s.len, flags, s.target, s.gather);
  if (!(flags & IOMMU_DIRTY_NO_CLEAR)) s.gather.release();
}

function hrSeconds(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const suite: BenchSuite = {
  name: "pgtable",
  description: "dirty harvest from Wasm page tables vs plain reads/copies of the same bytes",
  runs: 5,
  maxTime: 0.25,
  cases(): BenchCase[] {
    core = new WasmCore();
    readBuf = alignedAlloc(PTE_BYTES, 0);
    new Rng(1).fill(core.u8.subarray(readBuf, readBuf + (1 << 16)));
    for (const f of PT_FORMATS) setups.push(build(f, G, NPTE * G, `4Mi 4K PTEs ${f}`));
    setups.push(build("amd-v1", M2, TIB, "1TiB 2M leaves amd-v1"));
    const cases: BenchCase[] = [];
    for (const s of setups) {
      const group = `${s.name} NO_CLEAR`;
      cases.push({ group, name: "wasm v128 read of the PTE bytes", bytes: s.pteBytes, baseline: true, fn: () => core.x.scanXor(s.region, s.pteBytes) });
      cases.push({ group, name: "read dirty NO_CLEAR", bytes: s.pteBytes, fn: () => harvest(s, IOMMU_DIRTY_NO_CLEAR) });
    }
    return cases;
  },
  extras(): Record<string, number> {
    // Read-and-clear changes the PTEs, so each timed call starts from the restored
    // snapshot; the restore is itself a plain copy of the table region (the baseline).
    const out: Record<string, number> = {};
    for (const s of setups) {
      const copyT: number[] = [];
      const clearT: number[] = [];
      for (let i = 0; i < 9; i++) {
        copyT.push(hrSeconds(() => core.x.copyBytes(s.region, s.snapshot, s.regionBytes)));
        clearT.push(hrSeconds(() => harvest(s, 0)));
      }
      const copyGbps = s.regionBytes / median(copyT) / 1e9;
      const clearGbps = s.pteBytes / median(clearT) / 1e9;
      const key = s.name.replace(/ /g, "_");
      out[`${key}.clear_GBps`] = +clearGbps.toFixed(3);
      out[`${key}.copy_GBps`] = +copyGbps.toFixed(3);
      out[`${key}.clear_vs_copy`] = +(clearGbps / copyGbps).toFixed(3);
      out[`${key}.clear_ms`] = +(median(clearT) * 1e3).toFixed(3);
      core.x.copyBytes(s.region, s.snapshot, s.regionBytes);
    }
    return out;
  },
};

export default suite;
