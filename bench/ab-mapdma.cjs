/**
 * Same-process A/B of MAP_DMA / UNMAP_DMA next to 64,000 type1 mappings, for comparing two
 * builds on a machine whose speed drifts (this VM's did by 2x between minutes): both builds
 * are loaded into one Node process and batches of 1,000 alternate between them, so drift
 * hits both sides alike. Means over 40 timed batches after 10 warm-up batches, garbage
 * collection included, dirty tracking on, typed API (`Type1Handle`).
 *
 *   git worktree add --detach /tmp/base <commit> && (cd /tmp/base && npm ci)
 *   npm run build && node bench/ab-mapdma.cjs /tmp/base/dist dist append   # or: holes
 *
 * `append` maps above the 64,000 mappings and unmaps the batch with one UNMAP_DMA;
 * `holes` fills every other slot and maps into 1,000 random free slots between them, then
 * unmaps each; `refused` (after the `append` fill) makes batches of MAP_DMA that the kernel
 * refuses at its first check (size 0: EINVAL), the per-call cost of the typed API, the struct's
 * trip through the process's memory and the ioctl dispatch (no unmaps then). Prints one
 * JSON line: per side the fill mean and the batch mean/median (µs per MAP_DMA), the unmap
 * mean per mapping, and base/new ratios (> 1: new is faster).
 */
"use strict";
const { MAP, N, K, BASE, loadSides, openSide, batchRequests, mean, median, r2 } = require("./lib/ab.cjs");

const { mode, sides } = loadSides("ab-mapdma.cjs", ["append", "holes", "refused"]);

const st = {};
for (const [name, lib] of Object.entries(sides)) {
  const { h, guest } = openSide(lib, name);
  const stride = mode === "holes" ? 2 : 1;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) h.mapDma({ iova: BASE + BigInt(stride * i) * MAP, vaddr: guest + BigInt(stride * i) * MAP, size: MAP });
  const fill = Number(process.hrtime.bigint() - t0) / 1e3 / N;
  if (!h.startDirtyTracking().ok) throw new Error(`${name}: START failed`);
  st[name] = { h, guest, fill, maps: [], unmaps: [] };
}

for (let b = 0; b < 50; b++) {
  for (const name of b % 2 ? ["base", "new"] : ["new", "base"]) {
    const s = st[name];
    if (mode === "refused") {
      const q0 = { iova: BASE + BigInt(N) * MAP, vaddr: s.guest + BigInt(N) * MAP, size: 0n };
      const t = process.hrtime.bigint();
      for (let i = 0; i < 5 * K; i++) if (s.h.mapDma(q0).ok) throw new Error(`${name}: size 0 was mapped`);
      if (b >= 10) s.maps.push(Number(process.hrtime.bigint() - t) / 1e3 / (5 * K));
      if (b >= 10) s.unmaps.push(0);
      continue;
    }
    const reqs = batchRequests(mode, s.guest);
    let t = process.hrtime.bigint();
    for (const q of reqs) if (!s.h.mapDma(q).ok) throw new Error(`${name}: MAP_DMA failed`);
    if (b >= 10) s.maps.push(Number(process.hrtime.bigint() - t) / 1e3 / K);
    t = process.hrtime.bigint();
    if (mode === "holes") for (const q of reqs) s.h.unmapDma({ iova: q.iova, size: MAP });
    else s.h.unmapDma({ iova: BASE + BigInt(N) * MAP, size: BigInt(K) * MAP });
    if (b >= 10) s.unmaps.push(Number(process.hrtime.bigint() - t) / 1e3 / K);
  }
}

const side = (s) => ({ fill: r2(s.fill), mean: r2(mean(s.maps)), median: r2(median(s.maps)), unmap: r2(mean(s.unmaps)) });
process.stdout.write(
  JSON.stringify({
    mode,
    base: side(st.base),
    new: side(st.new),
    mapRatio: r2(mean(st.base.maps) / mean(st.new.maps)),
    unmapRatio: mode === "refused" ? null : r2(mean(st.base.unmaps) / mean(st.new.unmaps)),
  }) + "\n",
);
