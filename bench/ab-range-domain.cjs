/**
 * Same-process A/B of RangeDomain alone (the default IOMMU domain), the part of MAP_DMA /
 * UNMAP_DMA that bench/ab-mapdma.cjs measures inside the whole ioctl: both builds'
 * RangeDomain in one Node process, 64,000 two-page extents, then batches of 1,000 maps
 * (with iovaKey, as type1 passes it) and 1,000 unmaps of one extent each, the two sides
 * alternating batch by batch. Times are process CPU time (process.cpuUsage(), user +
 * system, GC threads included), per call, over 40 batches after 10 warm-up ones.
 *
 *   npm run build && node bench/ab-range-domain.cjs /tmp/base/dist dist append   # or: holes
 *
 * `append` maps above the fill; `holes` fills every other slot and maps into 1,000 random
 * free slots. Prints one JSON line: per side the map/unmap medians (µs of CPU per call) and
 * base/new ratios of the medians (> 1: new is faster).
 */
"use strict";
const { MAP, N, K, BASE, loadSides, batchRequests, median, r2 } = require("./lib/ab.cjs");

const { mode, sides } = loadSides("ab-range-domain.cjs", ["append", "holes"]);
const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

const st = {};
for (const [name, lib] of Object.entries(sides)) {
  const d = new lib.RangeDomain({ pgsizeBitmap: 0x40201000n, aperture: { start: 0n, end: (1n << 48n) - 1n } });
  const stride = mode === "holes" ? 2 : 1;
  for (let i = 0; i < N; i++) {
    const iova = BASE + BigInt(stride * i) * MAP;
    if (d.map(iova, iova, MAP, 7, Number(iova)) !== 0) throw new Error(`${name}: fill failed`);
  }
  st[name] = { d, maps: [], unmaps: [] };
}
// The same requests for both sides (only iova matters); paddr = iova.
const reqs = batchRequests(mode, 0n).map((q) => ({ iova: q.iova, key: Number(q.iova) }));

for (let b = 0; b < 50; b++) {
  for (const name of b % 2 ? ["base", "new"] : ["new", "base"]) {
    const s = st[name];
    let t = cpu();
    for (const q of reqs) if (s.d.map(q.iova, q.iova, MAP, 7, q.key) !== 0) throw new Error(`${name}: map failed`);
    if (b >= 10) s.maps.push((cpu() - t) / K);
    t = cpu();
    for (const q of reqs) if (s.d.unmap(q.iova, MAP) !== MAP) throw new Error(`${name}: unmap failed`);
    if (b >= 10) s.unmaps.push((cpu() - t) / K);
  }
}

const r3 = (x) => Math.round(x * 1000) / 1000;
const side = (s) => ({ map: r3(median(s.maps)), unmap: r3(median(s.unmaps)) });
process.stdout.write(
  JSON.stringify({
    mode,
    base: side(st.base),
    new: side(st.new),
    mapRatio: r2(median(st.base.maps) / median(st.new.maps)),
    unmapRatio: r2(median(st.base.unmaps) / median(st.new.unmaps)),
  }) + "\n",
);
