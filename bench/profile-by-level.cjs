/**
 * A CPU profile of appended MAP_DMA batches (typed API, next to N = 64,000 mappings, dirty
 * tracking on) for T seconds (argv[2], default 40), its samples split by the speed of the
 * batch they fell in: fast (< FAST µs per call, env, default 1.3) or slow (> SLOW, default
 * 1.7). Prints, per function, µs per MAP_DMA in fast and in slow batches and their ratio
 * (README, "MAP_DMA, seventh pass": every function is 2-3x slower in slow batches).
 *
 *   npm run build && node bench/profile-by-level.cjs 60
 */
"use strict";
const { Type1Handle, createVfioProcess, vtdPlatform } = require(process.env.DIST || "../dist/index.js");
const PAGE = 4096n, MAP = 2n * PAGE, N = +(process.env.N ?? 64000), K = 1000, T = +(process.argv[2] || 40);
const proc = createVfioProcess(vtdPlatform());
const h = Type1Handle.open(proc).value;
const base = 1n << 32n;
const guest = BigInt(proc.mmap(undefined, BigInt(N + K) * MAP).ret);
for (let i = 0; i < N; i++) h.mapDma({ iova: base + BigInt(i) * MAP, vaddr: guest + BigInt(i) * MAP, size: MAP });
h.startDirtyTracking();
const reqs = []; for (let i = N; i < N + K; i++) reqs.push({ iova: base + BigInt(i) * MAP, vaddr: guest + BigInt(i) * MAP, size: MAP });
const batches = [];
const batch = () => { const t0 = process.hrtime.bigint(); for (const q of reqs) if (!h.mapDma(q).ok) throw 1; const t1 = process.hrtime.bigint(); h.unmapDma({ iova: base + BigInt(N) * MAP, size: BigInt(K) * MAP }); batches.push([Number(t0 / 1000n), Number(t1 / 1000n)]); };
for (let b = 0; b < 10; b++) batch(); batches.length = 0;
const { Session } = require("inspector"); const s = new Session(); s.connect();
s.post("Profiler.enable"); s.post("Profiler.setSamplingInterval", { interval: 50 });
s.post("Profiler.start", () => {
  const end = Date.now() + T * 1000; while (Date.now() < end) batch();
  s.post("Profiler.stop", (e, r) => {
    const p = r.profile; const byId = new Map(); p.nodes.forEach((n) => byId.set(n.id, n));
    const key = (n) => n.callFrame.functionName + " " + n.callFrame.url.split("/").slice(-2).join("/") + ":" + n.callFrame.lineNumber;
    const us = batches.map(([a, b]) => (b - a) / K); const FAST = +(process.env.FAST || 1.3), SLOW = +(process.env.SLOW || 1.7);
    const cls = us.map((u) => (u < FAST ? "f" : u > SLOW ? "s" : "")); const maps = { f: 0, s: 0 }; cls.forEach((c) => c && (maps[c] += K));
    const acc = { f: new Map(), s: new Map() };
    let t = p.startTime, bi = 0;
    p.samples.forEach((sid, i) => { t += p.timeDeltas[i]; while (bi < batches.length && batches[bi][1] < t) bi++; if (bi >= batches.length || batches[bi][0] > t) return; const c = cls[bi]; if (!c) return; const k = key(byId.get(sid)); acc[c].set(k, (acc[c].get(k) || 0) + p.timeDeltas[i]); });
    console.log("batches fast", cls.filter((c) => c === "f").length, "slow", cls.filter((c) => c === "s").length, "of", us.length);
    const tot = (m) => [...m.values()].reduce((a, b) => a + b, 0);
    console.log("per map µs: fast", (tot(acc.f) / maps.f).toFixed(3), "slow", (tot(acc.s) / maps.s).toFixed(3));
    const keys = new Set([...acc.f.keys(), ...acc.s.keys()]);
    const rows = [...keys].map((k) => [k, (acc.f.get(k) || 0) / maps.f, (acc.s.get(k) || 0) / maps.s]).sort((a, b) => b[2] - a[2]);
    for (const [k, f, sl] of rows.slice(0, +(process.env.TOP || 35))) console.log(f.toFixed(3).padStart(7), sl.toFixed(3).padStart(7), (sl / f).toFixed(2).padStart(6), k);
  });
});
