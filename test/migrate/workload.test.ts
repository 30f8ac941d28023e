/**
 * The round sampler: a round's distinct bursts, drawn directly (DmaWorkload.startRound /
 * nextDistinct), against the draw-by-draw generator `next()` it replaces and the
 * occupancy formula; and runs whose rounds last astronomically long still end with an
 * exact ledger.
 */
import { GuestLayout, DmaWorkload, defaultScenario, device, runMigration, type Workload, type DmaBurst } from "../../src/migrate";

const layout = new GuestLayout(4 * 2 ** 30, 4096);
const W: Workload = { rate: 1e6, workingSet: 64 * 2 ** 20, hotSet: 8 * 2 ** 20, hotFraction: 0.8, burst: 64 * 1024 };

function distinct(w: DmaWorkload, n: number): number[] {
  const out: number[] = [];
  const b: DmaBurst = { page: 0, npages: 0 };
  w.startRound(n);
  while (w.nextDistinct(b)) out.push(b.page);
  return out;
}

describe("distinct bursts per round", () => {
  test("are distinct slots of the working set, never more than the draws, all of them for a huge round", () => {
    const w = new DmaWorkload(W, layout, 3);
    const slots = new Set<number>();
    for (let c = 0; c < w.chunks.length; c++) for (let k = 0; k < w.slotsPerChunk; k++) slots.add(w.chunks[c] + k * w.burstPages);
    expect(slots.size).toBe(w.slots);
    for (const n of [0, 1, 5, 100, 1000, 1e15]) {
      const pages = distinct(w, n);
      expect(new Set(pages).size).toBe(pages.length);
      expect(pages.length).toBeLessThanOrEqual(Math.min(n, w.slots));
      for (const p of pages) expect(slots.has(p)).toBe(true);
      if (n === 1e15) expect(pages.length).toBe(w.slots);
    }
  });

  test("match next() draw by draw in distribution: mean distinct count and hot share", () => {
    // Per round of n draws: the draw-by-draw generator's distinct bursts vs the sampler's,
    // averaged over many rounds; both against the occupancy formula sum(1 - (1 - p)^n).
    const n = 600;
    const rounds = 300;
    const a = new DmaWorkload(W, layout, 11);
    const b = new DmaWorkload(W, layout, 11);
    const hotPages = new Set<number>();
    for (let c = 0; c < a.hotChunks; c++) for (let k = 0; k < a.slotsPerChunk; k++) hotPages.add(a.chunks[c] + k * a.burstPages);
    let seqTotal = 0;
    let seqHot = 0;
    let samTotal = 0;
    let samHot = 0;
    const burst: DmaBurst = { page: 0, npages: 0 };
    for (let r = 0; r < rounds; r++) {
      const seen = new Set<number>();
      for (let i = 0; i < n; i++) seen.add(a.next(burst).page);
      seqTotal += seen.size;
      for (const p of seen) if (hotPages.has(p)) seqHot++;
      const got = distinct(b, n);
      samTotal += got.length;
      for (const p of got) if (hotPages.has(p)) samHot++;
    }
    const H = hotPages.size;
    const N = a.slots;
    const pHot = W.hotFraction / H + (1 - W.hotFraction) / N;
    const pCold = (1 - W.hotFraction) / N;
    const expectHot = H * (1 - (1 - pHot) ** n);
    const expectAll = expectHot + (N - H) * (1 - (1 - pCold) ** n);
    for (const [total, hot] of [
      [seqTotal, seqHot],
      [samTotal, samHot],
    ]) {
      expect(Math.abs(total / rounds - expectAll) / expectAll).toBeLessThan(0.01);
      expect(Math.abs(hot / rounds - expectHot) / expectHot).toBeLessThan(0.01);
    }
  });
});

describe("run time independent of simulated time", () => {
  test("a 1 bit/s link: rounds of thousands of years, every working-set page each round, exact ledger", () => {
    const w = { rate: 100e6, workingSet: 64 * 2 ** 20, hotSet: 8 * 2 ** 20, hotFraction: 0.9, burst: 65536 };
    const s = { ...defaultScenario(), guestBytes: 4 * 2 ** 30, bandwidth: 1 / 8, devices: [device("iommufd", "nic0", w), device("emulated", "vgpu0", { ...w, burst: 16384 }, 1 << 20)] };
    const run = runMigration(s);
    if ("failure" in run) throw new Error(run.failure.message);
    const r = run.result;
    expect(r.check).toEqual({ ok: true, lostPages: 0, examples: [] });
    expect(r.converged).toBe(false);
    expect(r.stop).toBe("stalled");
    expect(r.totals.simulatedSeconds).toBeGreaterThan(1e10);
    const pre = r.rounds.filter((x) => x.phase === "pre-copy");
    for (const x of pre) {
      expect(x.bursts).toBeGreaterThan(1e12);
      // Both working sets, all of them (they may share a 2 MiB chunk or two).
      expect(x.writtenPages).toBeGreaterThan(2 * 16384 - 2 * 512 - 1);
      expect(x.writtenPages).toBeLessThanOrEqual(2 * 16384);
      expect(x.reportedPages).toBeGreaterThanOrEqual(x.writtenPages);
    }
  });
});
