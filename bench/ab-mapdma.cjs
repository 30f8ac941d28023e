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
const { resolve } = require("node:path");

const [baseDir, newDir, mode = "append"] = process.argv.slice(2);
if (!baseDir || !newDir || !["append", "holes", "refused"].includes(mode)) {
  process.stderr.write("usage: node bench/ab-mapdma.cjs BASE_DIST NEW_DIST [append|holes|refused]\n");
  process.exit(2);
}
const sides = { base: require(resolve(baseDir, "index.js")), new: require(resolve(newDir, "index.js")) };
const PAGE = 4096n;
const MAP = 2n * PAGE;
const N = 64000;
const K = 1000;
const BASE = 1n << 32n;

const st = {};
for (const [name, lib] of Object.entries(sides)) {
  const proc = lib.createVfioProcess(lib.vtdPlatform());
  const opened = lib.Type1Handle.open(proc);
  if (!opened.ok) throw new Error(`${name}: open: ${opened.errnoName}`);
  const h = opened.value;
  const guest = BigInt(proc.mmap(undefined, BigInt(2 * N + K) * MAP).ret);
  const stride = mode === "holes" ? 2 : 1;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) h.mapDma({ iova: BASE + BigInt(stride * i) * MAP, vaddr: guest + BigInt(stride * i) * MAP, size: MAP });
  const fill = Number(process.hrtime.bigint() - t0) / 1e3 / N;
  if (!h.startDirtyTracking().ok) throw new Error(`${name}: START failed`);
  st[name] = { h, guest, fill, maps: [], unmaps: [] };
}

let seed = 12345;
const freeSlot = () => 2 * ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % N) + 1;
const at = (s, slot) => ({ iova: BASE + BigInt(slot) * MAP, vaddr: s.guest + BigInt(slot) * MAP, size: MAP });

for (let b = 0; b < 50; b++) {
  for (const name of b % 2 ? ["base", "new"] : ["new", "base"]) {
    const s = st[name];
    let reqs;
    if (mode === "holes") {
      const slots = new Set();
      while (slots.size < K) slots.add(freeSlot());
      reqs = [...slots].map((x) => at(s, x));
    } else if (mode === "refused") {
      const q0 = { ...at(s, N), size: 0n };
      const t = process.hrtime.bigint();
      for (let i = 0; i < 5 * K; i++) if (s.h.mapDma(q0).ok) throw new Error(`${name}: size 0 was mapped`);
      if (b >= 10) s.maps.push(Number(process.hrtime.bigint() - t) / 1e3 / (5 * K));
      if (b >= 10) s.unmaps.push(0);
      continue;
    } else {
      reqs = Array.from({ length: K }, (_, i) => at(s, N + i));
    }
    let t = process.hrtime.bigint();
    for (const q of reqs) if (!s.h.mapDma(q).ok) throw new Error(`${name}: MAP_DMA failed`);
    if (b >= 10) s.maps.push(Number(process.hrtime.bigint() - t) / 1e3 / K);
    t = process.hrtime.bigint();
    if (mode === "holes") for (const q of reqs) s.h.unmapDma({ iova: q.iova, size: MAP });
    else s.h.unmapDma({ iova: BASE + BigInt(N) * MAP, size: BigInt(K) * MAP });
    if (b >= 10) s.unmaps.push(Number(process.hrtime.bigint() - t) / 1e3 / K);
  }
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const r2 = (x) => Math.round(x * 100) / 100;
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
