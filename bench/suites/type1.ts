/**
 * VFIO type1 GET_BITMAP at scale: a 4 TiB IOVA range (1 Gi pages of 4 KiB, a 128 MiB user
 * bitmap) made of 64 adjacent mappings at unaligned page offsets (so almost every mapping
 * lands at a non-zero bit shift), on an SMMU-like platform (48-bit aperture). The device is
 * IOMMU-backed, so every mapped page is reported dirty, the case live migration hits.
 * Each call is a full VFIO_IOMMU_DIRTY_PAGES ioctl through the simulated process. The
 * baseline is a plain 128 MiB memory.copy in the same Wasm memory, same process.
 */
import type { BenchCase, BenchSuite } from "../lib/harness";
import { Type1Handle, createVfioProcess } from "../../src/type1";
import { smmuPlatform } from "../../src/iommu";
import type { PackVariant } from "../../src/bitmap";

const GIB = 1n << 30n;
const RANGE = 4096n * GIB; // 4 TiB
const MAPS = 64;
const PAGE = 4096n;
const BITMAP_BYTES = Number(RANGE / PAGE / 8n); // 128 MiB

/** Facts about the modelled guest, reported beside the timings. */
const facts: Record<string, number> = {};

const suite: BenchSuite = {
  name: "type1",
  description: "GET_BITMAP over 4 TiB / 64 mappings (128 MiB bitmap) vs a plain 128 MiB copy",
  runs: 5,
  maxTime: 0.5,
  cases(): BenchCase[] {
    const proc = createVfioProcess(smmuPlatform());
    const opened = Type1Handle.open(proc);
    if (!opened.ok) throw new Error(`open: ${opened.errnoName}`);
    const h = opened.value;
    const guest = BigInt(proc.mmap(undefined, RANGE + (2n << 20n)).ret);
    const base = 0x100_0000_0000n; // 1 TiB, inside the 48-bit aperture and away from the MSI window
    // Mapping i starts (i * 13) % 64 pages after its 64 GiB slot: adjacent, unaligned shifts.
    const starts: bigint[] = [];
    for (let i = 0; i < MAPS; i++) starts.push(base + BigInt(i) * 64n * GIB + (i === 0 ? 0n : BigInt((i * 13) % 64) * PAGE));
    starts.push(base + RANGE);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < MAPS; i++) {
      const r = h.mapDma({ iova: starts[i], vaddr: guest + (starts[i] - base), size: starts[i + 1] - starts[i] });
      if (!r.ok) throw new Error(`map ${i}: ${r.errnoName}`);
    }
    facts.mapAllMs = Number(process.hrtime.bigint() - t0) / 1e6;
    if (!h.startDirtyTracking().ok) throw new Error("START failed");
    const data = BigInt(proc.mmap(undefined, BigInt(BITMAP_BYTES)).ret);
    const bitmap = { pgsize: PAGE, size: BigInt(BITMAP_BYTES), data };
    const iommu = h.iommu;
    const core = proc.core;
    const get = (variant: PackVariant) => () => {
      iommu.opts.bitmapCopy = variant;
      const r = h.getDirtyBitmap({ iova: base, size: RANGE }, bitmap);
      if (!r.ok) throw new Error(`GET_BITMAP: ${r.errnoName}`);
    };
    get("simd")(); // faults the user bitmap's frames in before anything is timed
    // The baseline copies 128 MiB between two page-aligned buffers half a page apart (see
    // bench/suites/bitmap.ts on 4K aliasing).
    const region = core.alloc(2 * BITMAP_BYTES + 3 * 4096, false);
    if (region === 0) throw new Error("no memory for the copy baseline");
    const src = Math.ceil(region / 4096) * 4096;
    const dst = src + BITMAP_BYTES + 2048;
    core.x.fillBytes(src, 0x5a, BITMAP_BYTES);
    facts.wasmMemoryMiB = core.memoryBytes / 2 ** 20;
    facts.userFrames = proc.mm!.memory.frameCount;
    facts.domainExtents = iommu.domainList.reduce((a, d) => a + ((d.domain as { extentCount?: number }).extentCount ?? 0), 0);
    facts.pinnedRuns = iommu.dmaList.toArray().reduce((a, d) => a + d.runs.length, 0);
    facts.lockedGiB = proc.mm!.lockedVm / 262144;
    const group = "GET_BITMAP 4TiB/64 maps";
    return [
      { group, name: "plain copy 128 MiB", bytes: BITMAP_BYTES, baseline: true, fn: () => core.x.copyBytes(dst, src, BITMAP_BYTES) },
      { group, name: "GET_BITMAP default (simd)", bytes: BITMAP_BYTES, fn: get("simd") },
      { group, name: "GET_BITMAP word", bytes: BITMAP_BYTES, fn: get("word") },
      { group, name: "GET_BITMAP byte (v12)", bytes: BITMAP_BYTES, fn: get("byte") },
    ];
  },
  extras(): Record<string, number> {
    return { ...facts };
  },
};

export default suite;
