/**
 * Same-process A/B of the MAP_DMA backend alone (VfioIommu.vfioDmaDoMap, no ioctl or
 * typed-API plumbing) next to 64,000 type1 mappings, between two builds: like
 * ab-mapdma.cjs (batches of 1,000 alternate between the builds, 10 warm-up batches then
 * 40 timed, or BATCHES=n timed; dirty tracking on), timing each batch both in wall time and
 * in process CPU time (process.cpuUsage(), user + system; GC helper threads count too).
 * Unmaps go through the typed API, timed the same. The fill (64,000 direct maps, no
 * tracking yet) is timed in CPU time only. API=1 in the environment times the typed API's
 * mapDma (Type1Handle) instead, for ab-mapdma.cjs's case with CPU time beside wall time.
 *
 *   npm run build && node bench/ab-mapdma-direct.cjs /tmp/base/dist dist append   # or: holes
 *
 * Prints one JSON line: per side the mean / median µs per call (wall and CPU) and the
 * base/new ratios of the means (and of the wall medians; > 1: new is faster).
 */
"use strict";
const { MAP, N, K, BASE, loadSides, openSide, batchRequests, mean, median, r2 } = require("./lib/ab.cjs");

const { mode, sides } = loadSides("ab-mapdma-direct.cjs", ["append", "holes"]);
const API = process.env.API === "1";

const st = {};
for (const [name, lib] of Object.entries(sides)) {
  const { proc, h, guest } = openSide(lib, name);
  const stride = mode === "holes" ? 2 : 1;
  const u0 = process.cpuUsage();
  for (let i = 0; i < N; i++) h.iommu.vfioDmaDoMap(proc, { flags: 3, iova: BASE + BigInt(stride * i) * MAP, vaddr: guest + BigInt(stride * i) * MAP, size: MAP });
  const u1 = process.cpuUsage(u0);
  if (!h.startDirtyTracking().ok) throw new Error(`${name}: START failed`);
  st[name] = { h, proc, guest, fillCpu: (u1.user + u1.system) / N, maps: [], mapsCpu: [], unmaps: [], unmapsCpu: [] };
}

const cpu = (u) => u.user + u.system;

const BATCHES = 10 + Number(process.env.BATCHES || 40);
for (let b = 0; b < BATCHES; b++) {
  for (const name of b % 2 ? ["base", "new"] : ["new", "base"]) {
    const s = st[name];
    const reqs = batchRequests(mode, s.guest, { flags: 3 });
    const iommu = s.h.iommu;
    const proc = s.proc;
    let u = process.cpuUsage();
    let t = process.hrtime.bigint();
    if (API) {
      for (const q of reqs) if (!s.h.mapDma(q).ok) throw new Error(`${name}: MAP_DMA failed`);
    } else {
      for (const q of reqs) if (iommu.vfioDmaDoMap(proc, q) !== 0) throw new Error(`${name}: MAP_DMA failed`);
    }
    let w = Number(process.hrtime.bigint() - t) / 1e3 / K;
    let c = cpu(process.cpuUsage(u)) / K;
    if (b >= 10) s.maps.push(w), s.mapsCpu.push(c);
    u = process.cpuUsage();
    t = process.hrtime.bigint();
    if (mode === "holes") for (const q of reqs) s.h.unmapDma({ iova: q.iova, size: MAP });
    else s.h.unmapDma({ iova: BASE + BigInt(N) * MAP, size: BigInt(K) * MAP });
    w = Number(process.hrtime.bigint() - t) / 1e3 / K;
    c = cpu(process.cpuUsage(u)) / K;
    if (b >= 10) s.unmaps.push(w), s.unmapsCpu.push(c);
  }
}

const side = (s) => ({
  fillCpu: r2(s.fillCpu),
  mean: r2(mean(s.maps)),
  median: r2(median(s.maps)),
  cpuMean: r2(mean(s.mapsCpu)),
  unmap: r2(mean(s.unmaps)),
  unmapCpu: r2(mean(s.unmapsCpu)),
});
process.stdout.write(
  JSON.stringify({
    mode,
    via: API ? "typed API" : "vfioDmaDoMap",
    base: side(st.base),
    new: side(st.new),
    mapRatio: r2(mean(st.base.maps) / mean(st.new.maps)),
    mapCpuRatio: r2(mean(st.base.mapsCpu) / mean(st.new.mapsCpu)),
    mapMedianRatio: r2(median(st.base.maps) / median(st.new.maps)),
    unmapRatio: r2(mean(st.base.unmaps) / mean(st.new.unmaps)),
    fillCpuRatio: r2(st.base.fillCpu / st.new.fillCpu),
  }) + "\n",
);
