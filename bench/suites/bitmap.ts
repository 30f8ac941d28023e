/**
 * Bitmap packing (update_user_bitmap's shift-OR) in each width, against a plain copy of
 * the same number of bytes inside Wasm memory, measured in the same process.
 * Source bitmaps of 4 KiB, 256 KiB and 32 MiB (32 MiB = 1 TiB of 4 KiB pages), placed at
 * destination bit offsets 0, 13 and 64·1000+13.
 */
import type { BenchCase, BenchSuite } from "../lib/harness";
import { PACK_VARIANTS, WasmCore, pack, packBytesJs, packU32Js } from "../../src";
import { Rng } from "../../src/util/random";

const SIZES: ReadonlyArray<[string, number]> = [
  ["4KiB", 4 << 10],
  ["256KiB", 256 << 10],
  ["32MiB", 32 << 20],
];
const OFFSETS = [0, 13, 64 * 1000 + 13];

const suite: BenchSuite = {
  name: "bitmap",
  description: "pack (shift-OR into the caller's bitmap) vs a plain copy of the same bytes",
  runs: 5,
  maxTime: 0.12,
  cases(): BenchCase[] {
    const core = new WasmCore();
    const maxBytes = SIZES[SIZES.length - 1][1];
    // Place source and destination by hand: page-aligned source, destination half a page
    // off. Buffers whose addresses differ by a small amount modulo 4096 make every store
    // alias the next loads (4K aliasing) and run several times slower, which would make
    // the comparison about placement, not kernels.
    const region = core.alloc(2 * maxBytes + 8 * 1002 + 3 * 4096);
    const src = Math.ceil(region / 4096) * 4096;
    const dst = src + maxBytes + 4096 + 2048;
    new Rng(42).fill(core.u8.subarray(src, src + maxBytes));
    // No allocation happens after this point, so these views stay valid.
    const u8 = core.u8;
    const i32 = new Int32Array(u8.buffer);
    const cases: BenchCase[] = [];
    for (const [label, bytes] of SIZES) {
      const nbits = bytes * 8;
      for (const off of OFFSETS) {
        const group = `${label} @bit ${off}`;
        // The baseline writes the same destination bytes the pack writes.
        const d = dst + Math.floor(off / 64) * 8;
        cases.push({ group, name: "wasm memory.copy", bytes, baseline: true, fn: () => core.x.copyBytes(d, src, bytes) });
        for (const v of PACK_VARIANTS) cases.push({ group, name: `wasm ${v}`, bytes, fn: () => pack(core, v, dst, off, src, nbits) });
        cases.push({ group, name: "js u32", bytes, fn: () => packU32Js(i32, dst, off, src, nbits) });
        cases.push({ group, name: "js byte", bytes, fn: () => packBytesJs(u8, dst, off, src, nbits) });
      }
    }
    return cases;
  },
};

export default suite;
