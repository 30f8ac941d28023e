/**
 * Same-process A/B of the appended MAP_DMA next to 64,000 type1 mappings, by adjacent pairs:
 * for this VM, whose speed switches between two levels about 2x apart every few seconds
 * (README, "MAP_DMA, sixth pass"). Batches of 1,000 alternate between the two builds
 * (base, new, new, base, ...) for T seconds (env T, default 40); each adjacent pair ran
 * within a few milliseconds of each other, so on the same level, and its ratio base/new is
 * one sample. Prints one JSON line: the pairs, the median ratio (> 1: new is faster), each
 * side's median batch (µs per MAP_DMA), and the same split by level: pairs whose both
 * batches took < 1.5 µs per call ("fast") and > 1.6 ("slow"), each as
 * [pairs, base median, new median, median ratio].
 *
 *   npm run build && node bench/ab-pairs.cjs BASE_DIST dist
 *
 * (BASE_DIST: another build's dist folder, e.g. from `git worktree add --detach /tmp/base
 * <commit>`, `npm ci` there.) Typed API (`Type1Handle`), dirty tracking on; each batch is
 * unmapped with one UNMAP_DMA, untimed.
 */
"use strict";
const { MAP, N, K, BASE, loadSides, openSide, batchRequests, median } = require("./lib/ab.cjs");

const { sides } = loadSides("ab-pairs.cjs", ["append"]);
const T = Number(process.env.T || 40);

const st = {};
for (const [name, lib] of Object.entries(sides)) {
  const { h, guest } = openSide(lib, name);
  for (let i = 0; i < N; i++) h.mapDma({ iova: BASE + BigInt(i) * MAP, vaddr: guest + BigInt(i) * MAP, size: MAP });
  if (!h.startDirtyTracking().ok) throw new Error(`${name}: START failed`);
  st[name] = { h, reqs: batchRequests("append", guest) };
}

/** One timed batch of the side's K appended MAP_DMA (µs per call), then its untimed UNMAP_DMA. */
function batch(s) {
  const t = process.hrtime.bigint();
  for (const q of s.reqs) if (!s.h.mapDma(q).ok) throw new Error("MAP_DMA failed");
  const us = Number(process.hrtime.bigint() - t) / 1e3 / K;
  if (!s.h.unmapDma({ iova: BASE + BigInt(N) * MAP, size: BigInt(K) * MAP }).ok) throw new Error("UNMAP_DMA failed");
  return us;
}

for (let b = 0; b < 20; b++) for (const s of [st.base, st.new]) batch(s);
const pairs = [];
const end = Date.now() + T * 1000;
for (let b = 0; Date.now() < end; b++) {
  const r = {};
  for (const name of b % 2 ? ["base", "new"] : ["new", "base"]) r[name] = batch(st[name]);
  pairs.push(r);
}

const r3 = (x) => Math.round(x * 1000) / 1000;
const level = (ps) => (ps.length ? [ps.length, r3(median(ps.map((p) => p.base))), r3(median(ps.map((p) => p.new))), r3(median(ps.map((p) => p.base / p.new)))] : [0]);
process.stdout.write(
  JSON.stringify({
    pairs: pairs.length,
    ratioMedian: r3(median(pairs.map((p) => p.base / p.new))),
    base: r3(median(pairs.map((p) => p.base))),
    new: r3(median(pairs.map((p) => p.new))),
    fast: level(pairs.filter((p) => Math.max(p.base, p.new) < 1.5)),
    slow: level(pairs.filter((p) => Math.min(p.base, p.new) > 1.6)),
  }) + "\n",
);
