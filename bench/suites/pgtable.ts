/**
 * Dirty harvest from the Wasm page tables, against plain memory traffic on the same bytes
 * measured in the same process:
 * - 4 Mi present 4 KiB PTEs (32 MiB of PTEs), half of them dirty at random, per format:
 *   NO_CLEAR read (benchmark.js) vs a plain v128 read of 32 MiB; read-and-clear (extras,
 *   timed by hand because each call changes the state: the PTEs are restored from a
 *   snapshot with memory.copy between calls, and that restore copy is the baseline; a
 *   64 MiB read before each timed call leaves both starting from cold caches).
 *   The extras also time NO_CLEAR against the plain read interleaved, from cold caches.
 * - the same over 64 tables (256 KiB of PTEs, in L2): NO_CLEAR vs the plain read with
 *   both in cache, where the dirty-bit gather, not memory, sets the pace.
 * - a 1 TiB range mapped with 2 MiB leaves (AMD v1, 512 Ki leaves), half dirty, into a
 *   32 MiB bitmap of 4 KiB pages: NO_CLEAR and read-and-clear, reported.
 * - last, per format: unmap of the whole 4 Mi-PTE range (what a final harvest by
 *   UNMAP_DMA tears down), timed once per process against zeroing the same table bytes
 *   with memory.fill, both from cold caches.
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
const EVICT_BYTES = 64 * 2 ** 20;
/** 64 last-level tables: 256 KiB of PTEs, well inside a 1 MiB L2. */
const IN_CACHE_TABLES = 64;

interface Setup {
  name: string;
  pt: IoPageTable;
  target: DirtyTarget;
  gather: IotlbGather;
  len: number;
  /** Bytes of PTEs the harvest reads. */
  pteBytes: number;
  /** Small enough to stay in cache: benchmark.js cases only, no cold extras. */
  inCache: boolean;
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

interface Spec {
  format: PtFormat;
  leaf: number;
  len: number;
  name: string;
  inCache?: boolean;
}

/**
 * Builds every setup in three phases so each table's pages are contiguous (one
 * memory.copy restores them): heap allocations first, then all mapping (the table-page
 * allocator grows memory in order), then the dirty pattern and the snapshots.
 */
function buildAll(specs: Spec[]): Setup[] {
  const heapPart = specs.map((sp) => ({ sp, bm: Bitmap.create(core, sp.len / G), target: DirtyTarget.create(core), gather: IotlbGather.create(core) }));
  // Roots last: no heap growth may fall between table pages from here on.
  const pre = heapPart.map(({ sp, bm, target, gather }) => {
    const pt = IoPageTable.create(core, { format: sp.format, pgsizeBitmap: sp.leaf, hardwareDirty: true });
    if (!bm || !target || !gather || !pt) throw new Error(`bench: cannot create ${sp.name}`);
    return { sp, bm, target, gather, pt };
  });
  for (const { sp, pt, gather } of pre) {
    if (pt.map(0, 0x10_0000_0000, sp.len, IOMMU_READ | IOMMU_WRITE, gather) !== 0) throw new Error("bench: map failed");
  }
  return pre.map(({ sp, bm, target, gather, pt }) => {
    const rng = new Rng(7);
    if (sp.format !== "arm-lpae-s1") pt.setTracking(true);
    target.setBitmap(bm, 0, G);
    pt.readAndClearDirty(0, sp.len, 0, null, gather); // ARM maps start dirty
    gather.release();
    for (let iova = 0; iova < sp.len; iova += sp.leaf) if (rng.chance(0.5)) pt.setDirty(iova);
    const firstPte = pt.lookup(0)!.ptePtr;
    const first = firstPte - (firstPte % G);
    const lastPte = pt.lookup(sp.len - sp.leaf)!.ptePtr;
    const regionBytes = lastPte - (lastPte % G) + G - first;
    const pteBytes = (sp.len / sp.leaf) * 8;
    // The region holds the leaf tables plus the few upper tables interleaved with them.
    if (regionBytes > pteBytes * 1.01 + 2 * G) throw new Error(`bench: ${sp.name} tables are not contiguous`);
    const snapshot = alignedAlloc(regionBytes, G / 2);
    core.x.copyBytes(snapshot, first, regionBytes);
    return { name: sp.name, pt, target, gather, len: sp.len, pteBytes, inCache: sp.inCache === true, region: first, regionBytes, snapshot };
  });
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
    // A buffer larger than the last-level cache, read between hand-timed calls so that
    // neither the copy nor the harvest starts with its bytes in cache.
    readBuf = alignedAlloc(EVICT_BYTES, 0);
    new Rng(1).fill(core.u8.subarray(readBuf, readBuf + (1 << 16)));
    const specs: Spec[] = PT_FORMATS.map((f) => ({ format: f, leaf: G, len: NPTE * G, name: `4Mi 4K PTEs ${f}` }));
    specs.push(...PT_FORMATS.map((f) => ({ format: f, leaf: G, len: IN_CACHE_TABLES * 512 * G, name: `256Ki in-cache 4K PTEs ${f}`, inCache: true })));
    specs.push({ format: "amd-v1", leaf: M2, len: TIB, name: "1TiB 2M leaves amd-v1" });
    setups.push(...buildAll(specs));
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
    for (const s of setups.filter((x) => !x.inCache)) {
      const copyT: number[] = [];
      const clearT: number[] = [];
      for (let i = 0; i < 9; i++) {
        core.x.scanXor(readBuf, EVICT_BYTES);
        copyT.push(hrSeconds(() => core.x.copyBytes(s.region, s.snapshot, s.regionBytes)));
        core.x.scanXor(readBuf, EVICT_BYTES);
        clearT.push(hrSeconds(() => harvest(s, 0)));
      }
      // NO_CLEAR against a plain read of the same bytes, interleaved and from cold caches
      // (benchmark.js above times them one after the other, with warm caches).
      const readT: number[] = [];
      const noclT: number[] = [];
      for (let i = 0; i < 9; i++) {
        core.x.scanXor(readBuf, EVICT_BYTES);
        readT.push(hrSeconds(() => core.x.scanXor(s.region, s.pteBytes)));
        core.x.scanXor(readBuf, EVICT_BYTES);
        noclT.push(hrSeconds(() => harvest(s, IOMMU_DIRTY_NO_CLEAR)));
      }
      const copyGbps = s.regionBytes / median(copyT) / 1e9;
      const clearGbps = s.pteBytes / median(clearT) / 1e9;
      const key = s.name.replace(/ /g, "_");
      out[`${key}.clear_GBps`] = +clearGbps.toFixed(3);
      out[`${key}.copy_GBps`] = +copyGbps.toFixed(3);
      out[`${key}.clear_vs_copy`] = +(clearGbps / copyGbps).toFixed(3);
      out[`${key}.clear_ms`] = +(median(clearT) * 1e3).toFixed(3);
      out[`${key}.cold_read_GBps`] = +(s.pteBytes / median(readT) / 1e9).toFixed(3);
      out[`${key}.cold_noclear_GBps`] = +(s.pteBytes / median(noclT) / 1e9).toFixed(3);
      out[`${key}.cold_noclear_vs_read`] = +(median(readT) / median(noclT)).toFixed(3);
      core.x.copyBytes(s.region, s.snapshot, s.regionBytes);
    }
    // Destructive, so last: the 4 KiB-leaf setups are unmapped whole.
    for (const s of setups.filter((x) => !x.inCache && x.pteBytes === x.len / G * 8)) {
      core.x.scanXor(readBuf, EVICT_BYTES);
      const fillT = hrSeconds(() => core.x.fillBytes(s.snapshot, 0, s.regionBytes));
      core.x.scanXor(readBuf, EVICT_BYTES);
      let unmapped = 0;
      const unmapT = hrSeconds(() => { unmapped = s.pt.unmap(0, s.len, s.gather); });
      s.gather.release();
      if (unmapped !== s.len) throw new Error(`bench: ${s.name} unmapped ${unmapped} of ${s.len}`);
      const key = s.name.replace(/ /g, "_");
      out[`${key}.unmap_ms`] = +(unmapT * 1e3).toFixed(3);
      out[`${key}.unmap_vs_fill`] = +(fillT / unmapT).toFixed(3);
    }
    return out;
  },
};

export default suite;
