/**
 * The permap suite's per-call figures on the built package (dist/, what `require("vfio-sim")`
 * runs), in a fresh Node process: bench/suites/permap.ts runs this file and reports what it
 * prints. The suite itself runs under tsx, whose module wrapper turns every read of an
 * imported binding into a getter call, which shows on paths as short as one MAP_DMA.
 * Prints one JSON object: µs per MAP_DMA filling a container to 64,000 two-page mappings
 * (mean, JIT warm-up included), µs per MAP_DMA next to 64,000 mappings with dirty tracking
 * on (median of 15 batches of 1,000) and per MAP_DMA + UNMAP_DMA pair (the same batches with
 * their UNMAP_DMA), and ms per GET_BITMAP over the 64,000 mappings with the
 * batch records cached and rebuilt (medians of 15).
 */
"use strict";
const { Type1Handle, createVfioProcess, vtdPlatform } = require("../../dist/index.js");

const PAGE = 4096n;
const MAP = 2n * PAGE;
const N = 64000;
const K = 1000;
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

const proc = createVfioProcess(vtdPlatform());
const opened = Type1Handle.open(proc);
if (!opened.ok) throw new Error(`open: ${opened.errnoName}`);
const h = opened.value;
const base = 1n << 32n;
const guest = BigInt(proc.mmap(undefined, BigInt(N + K) * MAP).ret);
const map = (i) => {
  const r = h.mapDma({ iova: base + BigInt(i) * MAP, vaddr: guest + BigInt(i) * MAP, size: MAP });
  if (!r.ok) throw new Error(`map ${i}: ${r.errnoName}`);
};
let t0 = process.hrtime.bigint();
for (let i = 0; i < N; i++) map(i);
const mapDmaUsPer64k = (ms(t0) * 1000) / N;
if (!h.startDirtyTracking().ok) throw new Error("START failed");
const pairs = [];
const steady = [];
for (let b = 0; b < 15; b++) {
  t0 = process.hrtime.bigint();
  for (let i = N; i < N + K; i++) map(i);
  steady.push((ms(t0) * 1000) / K);
  if (!h.unmapDma({ iova: base + BigInt(N) * MAP, size: BigInt(K) * MAP }).ok) throw new Error("unmap failed");
  pairs.push((ms(t0) * 1000) / K);
}
const bytes = Math.ceil((N * 2) / 64) * 8;
const data = BigInt(proc.mmap(undefined, BigInt(bytes + 4096)).ret);
proc.fill(data, bytes + 4096, 0);
const get = (drop) => {
  if (drop) h.iommu.reportCache = null;
  t0 = process.hrtime.bigint();
  const r = h.getDirtyBitmap({ iova: base, size: BigInt(N) * MAP }, { pgsize: PAGE, size: BigInt(bytes), data });
  if (!r.ok) throw new Error(`GET_BITMAP: ${r.errnoName}`);
  return ms(t0);
};
const cached = [];
const rebuilt = [];
for (let i = 0; i < 15; i++) {
  rebuilt.push(get(true));
  cached.push(get(false));
}
process.stdout.write(
  JSON.stringify({ mapDmaUsPer64k, mapDmaSteadyUs: median(steady), mapUnmapPairUs: median(pairs), getBitmapMs: median(cached), getBitmapRebuiltMs: median(rebuilt) }) + "\n",
);
