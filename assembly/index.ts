// The Wasm core's entry point: everything the TypeScript shell may call, and nothing else.
//
// The boundary is deliberately narrow and number-only: pointers and lengths are usize
// (wasm32: plain JS numbers), bit indices are u32. No managed objects, strings or
// BigInt cross it. The shell's counterpart is src/wasm/core.ts, which owns allocation
// and re-reads memory views after growth.
export { alloc, allocZeroed, free, copyBytes, fillBytes } from "./runtime/heap";
export { setRange, clearRange, testRange, popcountRange, findNextSet } from "./bitmap/bits";
export { packByte, packWord, packSimd } from "./bitmap/pack";
export { orBits, andNotWords } from "./migrate/bitops";
