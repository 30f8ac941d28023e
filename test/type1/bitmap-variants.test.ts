/**
 * The fused all-dirty GET_BITMAP path (default: simd/word) against the unfused
 * word-by-word path (the `byte` option never fuses): random scripts of maps, GETs at random
 * bases with pre-filled user words, unmaps with bitmaps and STOP/START must print the same
 * bytes and leave the same per-mapping bitmaps (including the stale bits above nbits).
 */
import { Rng } from "../../src/util/random";
import { TraceRunner, parseTrace } from "../../src/trace";
import { WasmCore } from "../../src/wasm/core";
import type { PackVariant } from "../../src/bitmap";

function randomScript(rng: Rng, maxMaps = 5, maxPages = 70): string {
  const lines = ["case variants"];
  let iova = 0x1000 * (1 + rng.int(70));
  const maps: Array<[number, number]> = [];
  for (let i = 0; i < 1 + rng.int(maxMaps); i++) {
    const pages = 1 + rng.int(rng.chance(0.3) ? 300 : maxPages);
    maps.push([iova, pages * 0x1000]);
    lines.push(`map vaddr=+${maps.length * 0x200000} iova=0x${iova.toString(16)} size=0x${(pages * 0x1000).toString(16)}`);
    iova += pages * 0x1000 + (rng.chance(0.5) ? 0 : 0x1000 * rng.int(90));
  }
  lines.push("dirty flags=1");
  for (let step = 0; step < 25; step++) {
    const a = rng.int(maps.length);
    const b = a + rng.int(maps.length - a);
    const base = maps[a][0] - 0x1000 * rng.int(Math.min(130, maps[a][0] / 0x1000));
    const end = maps[b][0] + maps[b][1];
    const bytes = Math.ceil((end - base) / 0x1000 / 64) * 8;
    const data = 0x3f00000 + 8 * rng.int(4);
    if (rng.chance(0.5)) lines.push(`fill addr=+0x${data.toString(16)} size=${bytes + 16} byte=0x${rng.int(256).toString(16)}`);
    const r = rng.int(10);
    if (r === 0) lines.push("dirty flags=2", "dirty flags=1");
    else if (r === 1 && maps.length > 1) {
      const [mi, ms] = maps.splice(a, 1)[0];
      lines.push(`unmap flags=1 argsz=48 iova=0x${mi.toString(16)} size=0x${ms.toString(16)} pgsize=0x1000 bitmap_size=${Math.ceil(ms / 0x1000 / 64) * 8} data=+0x${data.toString(16)} show=${Math.ceil(ms / 0x1000 / 64) * 8 + 8}`);
    } else {
      lines.push(`dirty flags=4 iova=0x${base.toString(16)} size=0x${(end - base).toString(16)} pgsize=0x1000 bitmap_size=${bytes} data=+0x${data.toString(16)} show=${bytes + 16}`);
    }
  }
  return lines.join("\n") + "\n";
}

function run(script: string, variant: PackVariant, core: WasmCore): { out: string; bitmaps: string[] } {
  const runner = new TraceRunner({ core, type1: { bitmapCopy: variant } });
  let out = runner.start();
  for (const line of parseTrace(script)) out += runner.step(line).output;
  const bitmaps = runner.iommu!.dmaList.toArray().map((d) => (d.bitmap ? Buffer.from(d.bitmap.core.u8.subarray(d.bitmap.ptr, d.bitmap.ptr + d.bitmap.bytes)).toString("hex") : "-"));
  runner.proc.exit();
  return { out, bitmaps };
}

describe("GET_BITMAP variants agree (fused vs word-by-word)", () => {
  const core = new WasmCore();
  for (const seed of [11, 12, 13, 14, 15, 16, 17, 18]) {
    it(`seed ${seed}`, () => {
      const script = randomScript(new Rng(seed));
      const ref = run(script, "byte", core);
      expect(ref.out).toMatch(/dirty = 0 OK bitmap=/);
      for (const v of ["word", "simd"] as const) expect(run(script, v, core)).toEqual(ref);
    });
  }
  // Dozens of small adjacent mappings: once the user bitmap is written, GET_BITMAP reports
  // them in Wasm batches (src/type1/dirty.ts reportAndClearAll), which must leave the same
  // bytes and dma bitmaps as the per-dma paths.
  for (const seed of [21, 22, 23, 24, 25, 26]) {
    it(`many small mappings, seed ${seed}`, () => {
      const script = randomScript(new Rng(seed), 40, 3);
      const ref = run(script, "byte", core);
      expect(ref.out).toMatch(/dirty = 0 OK bitmap=/);
      expect(run(script, "simd", core)).toEqual(ref);
    });
  }
});
