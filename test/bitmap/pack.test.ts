import { PACK_VARIANTS, PackVariant, WasmCore, pack, packBytesJs, packU32Js } from "../../src";
import { Rng } from "../../src/util/random";
import { refPack } from "./reference";

type Packer = (core: WasmCore, dst: number, dstBit: number, src: number, nbits: number) => void;

const PACKERS: Record<string, Packer> = {
  ...Object.fromEntries(PACK_VARIANTS.map((v: PackVariant) => [v, (c: WasmCore, d: number, k: number, s: number, n: number) => pack(c, v, d, k, s, n)])),
  "js-byte": (c, d, k, s, n) => packBytesJs(c.u8, d, k, s, n),
  "js-u32": (c, d, k, s, n) => packU32Js(new Int32Array(c.u8.buffer), d, k, s, n),
};

/**
 * Runs one case: random source (with garbage past nbits), random destination, the kernel
 * on one copy and the per-bit reference on another; the whole region must match.
 */
function checkCase(core: WasmCore, packer: Packer, rng: Rng, nbits: number, dstBit: number): void {
  const srcBytes = Math.ceil(nbits / 64) * 8 + 8;
  const dstBytes = Math.ceil((dstBit + nbits) / 64) * 8 + 64;
  const src = core.alloc(srcBytes);
  const dst = core.alloc(dstBytes);
  const dstRef = core.alloc(dstBytes);
  const u8 = core.u8;
  rng.fill(u8.subarray(src, src + srcBytes));
  rng.fill(u8.subarray(dst, dst + dstBytes));
  u8.copyWithin(dstRef, dst, dst + dstBytes);
  packer(core, dst, dstBit, src, nbits);
  refPack(core.u8, dstRef, dstBit, src, nbits);
  const got = core.u8.subarray(dst, dst + dstBytes);
  const want = core.u8.subarray(dstRef, dstRef + dstBytes);
  if (!Buffer.from(got).equals(Buffer.from(want))) {
    let at = 0;
    while (got[at] === want[at]) at++;
    throw new Error(`nbits=${nbits} dstBit=${dstBit}: first difference at byte ${at}: got ${got[at]} want ${want[at]}`);
  }
  core.free(src);
  core.free(dst);
  core.free(dstRef);
}

describe.each(Object.keys(PACKERS))("pack (%s)", (name) => {
  const packer = PACKERS[name];
  const core = new WasmCore();

  test("edge sizes 0, 1, 63, 64, 65, 127, 128, 129, 511, 512, 513, 1000 at every offset 0..191", () => {
    const rng = new Rng(1);
    for (const nbits of [0, 1, 63, 64, 65, 127, 128, 129, 511, 512, 513, 1000]) {
      for (let k = 0; k < 192; k++) checkCase(core, packer, rng, nbits, k);
    }
  });

  test("3000 random cases (seeded), sizes up to 2^14", () => {
    const rng = new Rng(2);
    for (let i = 0; i < 3000; i++) checkCase(core, packer, rng, rng.int(1 << (1 + rng.int(14))), rng.int(192));
  });

  test("random large cases up to 2^20 bits", () => {
    const rng = new Rng(3);
    for (let i = 0; i < 6; i++) checkCase(core, packer, rng, rng.range(1 << 19, 1 << 20), rng.int(64 * 1000 + 64));
  });

  test("source and destination ending at the very end of linear memory", () => {
    const c = new WasmCore();
    const rng = new Rng(4);
    for (const nbits of [1, 63, 64, 65, 600, 4096, 4097]) {
      for (const k of [0, 1, 13, 63, 64, 100]) {
        // Memory grown from JS is outside the allocator's pool: the top of it is ours.
        c.x.memory.grow(1);
        const end = c.memoryBytes;
        const srcBytes = Math.ceil(nbits / 64) * 8;
        const dstBytes = Math.ceil(((k % 64) + nbits) / 64) * 8;
        const src = end - srcBytes;
        const dst = end - 32768 - dstBytes - Math.floor(k / 64) * 8;
        rng.fill(c.u8.subarray(end - 65536, end));
        const ref = c.u8.slice();
        packer(c, dst, k, src, nbits);
        refPack(ref, dst, k, src, nbits);
        expect(Buffer.from(c.u8.subarray(end - 65536, end)).equals(Buffer.from(ref.subarray(end - 65536, end)))).toBe(true);
        // And the other way round: destination at the end.
        const dst2 = end - dstBytes - Math.floor(k / 64) * 8;
        const src2 = end - 40000;
        const ref2 = c.u8.slice();
        packer(c, dst2, k, src2, nbits);
        refPack(ref2, dst2, k, src2, nbits);
        expect(Buffer.from(c.u8.subarray(end - 65536, end)).equals(Buffer.from(ref2.subarray(end - 65536, end)))).toBe(true);
      }
    }
  });
});

describe("WasmCore memory", () => {
  test("views are re-read after growth", () => {
    const core = new WasmCore();
    const before = core.u8;
    const p = core.alloc(64 << 20);
    expect(p).not.toBe(0);
    expect(before.length).toBe(0); // detached by growth
    expect(core.u8.length).toBe(core.memoryBytes);
    core.u8[p + (64 << 20) - 1] = 7;
    expect(core.u8[p + (64 << 20) - 1]).toBe(7);
    core.free(p);
  });

  test("an allocation larger than linear memory can ever hold returns 0 instead of throwing", () => {
    const core = new WasmCore();
    expect(core.alloc(0xffff_0000)).toBe(0);
    expect(core.alloc(-1)).toBe(0);
    expect(core.alloc(16)).not.toBe(0);
  });
});
