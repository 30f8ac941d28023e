/**
 * WasmCore keeps freed small blocks (up to 64 bytes: type1's dma bitmaps) for reuse. A reused
 * block must read as zeros like a fresh one, must never overlap a live block, the live-block
 * count must be that of the plain allocator, the cache must stay bounded, and fault
 * injection must still be able to fail every allocation, the cached ones included.
 */
import { WasmCore } from "../../src/wasm/core";
import { Rng } from "../../src/util/random";

describe("WasmCore's small-block cache", () => {
  it("reuses freed blocks zeroed, never overlapping a live one, against a model of live ranges", () => {
    const core = new WasmCore();
    const rng = new Rng(20261130);
    const live = new Map<number, number>(); // ptr -> size asked
    let reused = 0;
    const freed = new Set<number>();
    for (let step = 0; step < 20000; step++) {
      // Live blocks stay few (frees catch up), so the overlap check is cheap.
      if (live.size === 0 || (live.size < 200 && rng.chance(0.55))) {
        const size = rng.int(80);
        const p = core.alloc(size);
        expect(p).toBeGreaterThan(0);
        expect(p % 16).toBe(0);
        if (freed.has(p)) reused++;
        // Zeroed, and not overlapping any live block (checked by hand: 20,000 steps).
        const u8 = core.u8;
        for (let i = 0; i < size; i++) if (u8[p + i] !== 0) throw new Error(`step ${step}: byte ${i} of a ${size}-byte block at ${p} is ${u8[p + i]}`);
        for (const [q, n] of live) if (!(p + Math.max(size, 1) <= q || q + Math.max(n, 1) <= p)) throw new Error(`step ${step}: ${p}+${size} overlaps ${q}+${n}`);
        // Dirty it, so a reuse that skipped zeroing would show.
        u8.fill(0xa5, p, p + size);
        live.set(p, size);
      } else {
        const keys = [...live.keys()];
        const p = keys[rng.int(keys.length)];
        const size = live.get(p)!;
        live.delete(p);
        freed.add(p);
        if (rng.chance(0.8)) core.freeSized(p, size);
        else core.free(p);
      }
      if (core.liveBlocks !== live.size) throw new Error(`step ${step}: liveBlocks ${core.liveBlocks}, ${live.size} live`);
    }
    expect(reused).toBeGreaterThan(1000);
  });

  it("keeps at most 1,024 blocks per class and gives the rest back", () => {
    const core = new WasmCore();
    const ps = Array.from({ length: 3000 }, () => core.alloc(16));
    for (const p of ps) core.freeSized(p, 16);
    expect(core.liveBlocks).toBe(0);
    // 1,024 come back from the cache (the last freed first); the next comes from the allocator.
    const again = Array.from({ length: 1024 }, () => core.alloc(16));
    expect(new Set(again)).toEqual(new Set(ps.slice(0, 1024)));
  });

  it("fails a cached allocation when fault injection picks it", () => {
    const core = new WasmCore();
    const p = core.alloc(16);
    core.freeSized(p, 16);
    core.faults.failNth(1);
    expect(core.alloc(16)).toBe(0);
    expect(core.liveBlocks).toBe(0);
    core.faults.failNth(0);
    expect(core.alloc(16)).toBe(p);
  });
});
