/**
 * The permap suite's per-call figures on the built package (dist/, what `require("vfio-sim")`
 * runs), in a fresh Node process: bench/suites/permap.ts runs this file and reports what it
 * prints. The suite itself runs under tsx, whose module wrapper turns every read of an
 * imported binding into a getter call, which shows on paths as short as one MAP_DMA.
 * Prints one JSON object, µs per MAP_DMA through the typed API:
 * - mapDmaUsPer64k: filling a container to 64,000 two-page mappings (mean, JIT warm-up and
 *   the young heap's growth included);
 * - mapDmaWarmFillUs: filling a second container the same way (64,000 mappings at every
 *   other slot) once the code is compiled;
 * - next to 64,000 mappings with dirty tracking on (each MAP_DMA also allocates its dma
 *   bitmap), in batches of 1,000 after 10 warm-up batches: mapDmaMarginalUs, the mean of 30
 *   batches (garbage collection included), mapDmaSteadyUs their median, and mapUnmapPairUs
 *   with the batch's UNMAP_DMA; mapDmaHolesUs, the mean of 20 batches mapped into random
 *   free slots between the second container's mappings (each search and insert lands
 *   somewhere else in the lists);
 * and ms per GET_BITMAP over the first container's 64,000 mappings with the batch records
 * cached and rebuilt (medians of 15); mapDmaRefusedUs, a MAP_DMA the kernel refuses at its
 * first check (size 0: EINVAL) next to those mappings, median of 20 batches of 5,000: what
 * every call pays before vfio_dma_do_map() does any work (the typed API's checks, the
 * struct's write into the process, the container's argsz and flags checks, the result
 * object; the typed MAP_DMA hands the container the fields it stored instead of an ioctl's
 * copy-in, see src/type1/api.ts).
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
for (let b = 0; b < 40; b++) {
  t0 = process.hrtime.bigint();
  for (let i = N; i < N + K; i++) map(i);
  const us = (ms(t0) * 1000) / K;
  if (!h.unmapDma({ iova: base + BigInt(N) * MAP, size: BigInt(K) * MAP }).ok) throw new Error("unmap failed");
  if (b < 10) continue; // warm-up: the tracking path compiles, the fill's survivors get promoted
  steady.push(us);
  pairs.push((ms(t0) * 1000) / K);
}
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
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
const refused = [];
const q0 = { iova: base, vaddr: guest, size: 0n };
// 10 batches of warm-up: the first refusal deoptimizes code compiled for successful maps.
for (let b = 0; b < 30; b++) {
  t0 = process.hrtime.bigint();
  for (let i = 0; i < 5 * K; i++) if (h.mapDma(q0).errnoName !== "EINVAL") throw new Error("size 0 was not refused");
  if (b >= 10) refused.push((ms(t0) * 1000) / (5 * K));
}
const cached = [];
const rebuilt = [];
for (let i = 0; i < 15; i++) {
  rebuilt.push(get(true));
  cached.push(get(false));
}
// A second container, mappings at even slots; new ones go into random odd slots.
const proc2 = createVfioProcess(vtdPlatform());
const h2 = Type1Handle.open(proc2).value;
const guest2 = BigInt(proc2.mmap(undefined, BigInt(2 * N) * MAP).ret);
const at2 = (slot) => ({ iova: base + BigInt(slot) * MAP, vaddr: guest2 + BigInt(slot) * MAP, size: MAP });
t0 = process.hrtime.bigint();
for (let i = 0; i < N; i++) if (!h2.mapDma(at2(2 * i)).ok) throw new Error(`map2 ${i}`);
const mapDmaWarmFillUs = (ms(t0) * 1000) / N;
if (!h2.startDirtyTracking().ok) throw new Error("START failed");
let seed = 12345;
const slot = () => 2 * ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % N) + 1;
const holes = [];
for (let b = 0; b < 25; b++) {
  const slots = new Set();
  while (slots.size < K) slots.add(slot());
  const reqs = [...slots].map(at2);
  t0 = process.hrtime.bigint();
  for (const q of reqs) if (!h2.mapDma(q).ok) throw new Error("map into a hole failed");
  if (b >= 5) holes.push((ms(t0) * 1000) / K);
  for (const q of reqs) if (!h2.unmapDma({ iova: q.iova, size: MAP }).ok) throw new Error("unmap failed");
}
process.stdout.write(
  JSON.stringify({
    mapDmaUsPer64k,
    mapDmaWarmFillUs,
    mapDmaMarginalUs: mean(steady),
    mapDmaSteadyUs: median(steady),
    mapUnmapPairUs: median(pairs),
    mapDmaHolesUs: mean(holes),
    mapDmaRefusedUs: median(refused),
    getBitmapMs: median(cached),
    getBitmapRebuiltMs: median(rebuilt),
  }) + "\n",
);
