import { Bitmap, WasmCore } from "../../src";
import { Rng } from "../../src/util/random";
import { getBit } from "./reference";

describe("bit-range primitives against a per-bit model", () => {
  const core = new WasmCore();
  const NBITS = 5000;
  const rng = new Rng(0xb175);

  test("random set/clear/test/popcount/findNextSet sequences agree with a boolean array", () => {
    const bm = Bitmap.create(core, NBITS)!;
    const model = new Array<boolean>(NBITS).fill(false);
    for (let step = 0; step < 4000; step++) {
      const start = rng.int(NBITS);
      const n = rng.chance(0.2) ? rng.int(3) : rng.int(NBITS - start + 1);
      switch (rng.int(5)) {
        case 0:
          bm.set(start, n);
          for (let i = start; i < start + n; i++) model[i] = true;
          break;
        case 1:
          bm.clear(start, n);
          for (let i = start; i < start + n; i++) model[i] = false;
          break;
        case 2:
          expect(bm.test(start, n)).toBe(model.slice(start, start + n).some(Boolean));
          break;
        case 3:
          expect(bm.popcount(start, n)).toBe(model.slice(start, start + n).filter(Boolean).length);
          break;
        case 4: {
          const idx = model.indexOf(true, start);
          expect(bm.findNextSet(start)).toBe(idx === -1 ? NBITS : idx);
          break;
        }
      }
    }
    const bytes = bm.toBytes();
    for (let i = 0; i < NBITS; i++) expect(getBit(bytes, 0, i) === 1).toBe(model[i]);
    expect([...bm.setBits()]).toEqual(model.flatMap((b, i) => (b ? [i] : [])));
    bm.dispose();
  });

  test("ranges touch only their own bits, including single-word and word-boundary ranges", () => {
    for (const [start, n] of [[0, 0], [0, 1], [63, 1], [63, 2], [64, 64], [1, 126], [0, 128], [5, 300], [127, 1]]) {
      const bm = Bitmap.create(core, 512)!;
      bm.set(start, n);
      expect(bm.popcount()).toBe(n);
      expect(bm.findNextSet()).toBe(n === 0 ? 512 : start);
      expect(bm.test(0, start)).toBe(false);
      expect(bm.test(start + n, 512 - start - n)).toBe(false);
      bm.set(0, 512);
      bm.clear(start, n);
      expect(bm.popcount()).toBe(512 - n);
      bm.dispose();
    }
  });

  test("findNextSet does not report bits past nbits that share the last word", () => {
    const bm = Bitmap.create(core, 70)!;
    core.u8.fill(0xff, bm.ptr + 8, bm.ptr + 16); // bits 64..127; only 64..69 are in range
    bm.clear(64, 6);
    expect(bm.findNextSet(0)).toBe(70);
    bm.dispose();
  });
});
