/**
 * Which kinds of work run at this VM's two speed levels (README, "MAP_DMA, seventh pass"):
 * in one process, for T seconds (argv[2], default 30), windows of 1.5 s of appended MAP_DMA
 * batches (1,000 calls, empty container, dirty tracking on; the window's median µs per call)
 * alternate with small fixed kernels, timed in ms: an integer loop (alu), allocation of small
 * objects (alloc), BigInt arithmetic (big), random reads in a 512 KiB Float64Array (arr) and
 * calls through 64 objects of two shapes (call). One line per window.
 *
 *   npm run build && node bench/vm-levels.cjs 40
 */
"use strict";
const { Type1Handle, createVfioProcess, vtdPlatform } = require("../dist/index.js");
const PAGE = 4096n, MAP = 2n * PAGE, N = 0, K = 1000;
const proc = createVfioProcess(vtdPlatform());
const h = Type1Handle.open(proc).value;
const base = 1n << 32n;
const guest = BigInt(proc.mmap(undefined, BigInt(N + K) * MAP).ret);
const map = (i) => { const r = h.mapDma({ iova: base + BigInt(i) * MAP, vaddr: guest + BigInt(i) * MAP, size: MAP }); if (!r.ok) throw new Error("map"); };
h.startDirtyTracking();
const batch = () => { const t0 = process.hrtime.bigint(); for (let i = N; i < N + K; i++) map(i); const us = Number(process.hrtime.bigint() - t0) / 1e3 / K; h.unmapDma({ iova: base + BigInt(N) * MAP, size: BigInt(K) * MAP }); return us; };
const time = (f) => { const t0 = process.hrtime.bigint(); f(); return Number(process.hrtime.bigint() - t0) / 1e6; };
let sink = 0;
const kern = {
  alu: () => { let x = 0; for (let i = 0; i < 2e7; i++) x = (x * 31 + i) | 0; sink ^= x; },
  alloc: () => { let o; for (let i = 0; i < 2e6; i++) o = { a: i, b: i + 1, c: [i] }; sink ^= o.a; },
  big: () => { let x = 1n; for (let i = 0; i < 3e5; i++) x = (x * 3n + BigInt(i)) & 0xffffffffffffn; sink ^= Number(x & 1n); },
  arr: (() => { const a = new Float64Array(1 << 16); return () => { let s = 0; for (let r = 0; r < 100; r++) for (let i = 0; i < a.length; i++) s += a[(i * 4099) & 0xffff]; sink ^= s; }; })(),
  call: (() => { const objs = []; for (let i = 0; i < 64; i++) objs.push(i % 2 ? { f: (x) => x + 1 } : { f: (x) => x + 2, g: 1 }); return () => { let s = 0; for (let i = 0; i < 5e6; i++) s = objs[i & 63].f(s) | 0; sink ^= s; }; })(),
};
const T = +(process.argv[2] || 30); const end = Date.now() + T * 1000; const rows = [];
while (Date.now() < end) { const xs = []; const e2 = Date.now() + 1500; while (Date.now() < e2) xs.push(batch()); xs.sort((a, b) => a - b);
  const r = [xs[xs.length >> 1].toFixed(2)]; for (const k of Object.keys(kern)) r.push(k + "=" + time(kern[k]).toFixed(0)); rows.push(r.join(" ")); }
console.log(rows.join("\n"));
