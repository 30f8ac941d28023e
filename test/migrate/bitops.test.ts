import { Bitmap, WasmCore } from "../../src";
import { Rng } from "../../src/util/random";

/** Per-bit reading of a Linux-layout bitmap, independent of the Wasm kernels. */
function bits(bytes: Uint8Array, n: number): boolean[] {
  return Array.from({ length: n }, (_, i) => ((bytes[i >> 3] >> (i & 7)) & 1) === 1);
}

describe("orBits / andNotWords against a per-bit model", () => {
  const core = new WasmCore();
  const rng = new Rng(0x0b175);

  test("orBits ORs exactly [dstBit, dstBit+nbits) and ignores source bits past nbits", () => {
    for (let iter = 0; iter < 400; iter++) {
      const dstBits = 64 * (1 + rng.int(8));
      const nbits = rng.int(dstBits + 1);
      const dstBit = rng.int(dstBits - nbits + 1);
      const dst = Bitmap.create(core, dstBits)!;
      const src = Bitmap.create(core, Math.max(nbits, 1) + 64)!;
      for (let i = 0; i < dstBits; i++) if (rng.chance(0.3)) dst.set(i);
      // Fill the source including junk past nbits, which must be ignored.
      for (let i = 0; i < src.nbits; i++) if (rng.chance(0.5)) src.set(i);
      const before = bits(dst.toBytes(), dstBits);
      const s = bits(src.toBytes(), src.nbits);
      core.x.orBits(dst.ptr, dstBit, src.ptr, nbits);
      const after = bits(dst.toBytes(), dstBits);
      // The spare word past the bitmap must be untouched too.
      expect(core.dv.getBigUint64(dst.ptr + dstBits / 8, true)).toBe(0n);
      for (let i = 0; i < dstBits; i++) {
        const inRange = i >= dstBit && i < dstBit + nbits;
        expect(after[i]).toBe(before[i] || (inRange && s[i - dstBit]));
      }
      dst.dispose();
      src.dispose();
    }
  });

  test("andNotWords clears in dst exactly the bits set in src (odd and even word counts)", () => {
    for (const words of [1, 2, 3, 7, 64, 65]) {
      const n = words * 64;
      const a = Bitmap.create(core, n)!;
      const b = Bitmap.create(core, n)!;
      for (let i = 0; i < n; i++) {
        if (rng.chance(0.5)) a.set(i);
        if (rng.chance(0.5)) b.set(i);
      }
      const av = bits(a.toBytes(), n);
      const bv = bits(b.toBytes(), n);
      core.x.andNotWords(a.ptr, b.ptr, words);
      const out = bits(a.toBytes(), n);
      for (let i = 0; i < n; i++) expect(out[i]).toBe(av[i] && !bv[i]);
      a.dispose();
      b.dispose();
    }
  });
});
