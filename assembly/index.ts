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
//
// I/O page tables (assembly/pgtable/). IOVAs, physical addresses and sizes cross as f64
// holding exact integers below 2^53 (9 PiB): every IOVA of a 48-bit (4-level) space and
// every 52-bit physical address, with no BigInt on any call. The shell (src/iommu/pgtable)
// refuses anything at or above 2^53 before it gets here; a 57-bit space is usable up to
// that bound. Inside the core all address arithmetic is u64. Pointers stay usize.
export { ptPagesInUse, ptPagesFree, ptSetPageLimit } from "./pgtable/pages";
export { gatherInit, gatherRelease, gatherStart, gatherEnd } from "./pgtable/gather";
export { targetSet, targetSpillStart, targetSpillEnd, targetRecord } from "./pgtable/target";
export {
  ptCreate, ptDestroy, ptSetFlags, ptTables, ptLevels, ptMap, ptUnmap, ptIovaToPhys, ptLookup,
  ptDeviceAccess, ptDeviceAccessRange, ptDeviceRing, ptDeviceDirtyUpdate, ptSetDirty, ptReadDirty, ptWriteProtect,
  ptOutPhys, ptOutLeafIova, ptOutLeafSize, ptOutPte, ptOutNoUpdate, ptOutLevel, ptOutWritable, pteLo, pteHi,
} from "./pgtable/table";
export { scanXor } from "./util/scan";
// VFIO type1 GET_BITMAP of many small all-dirty dmas in one call (src/type1/dirty.ts).
export { type1ReportAllDirty } from "./type1/report";
// Fault injection: the shell arms the allocation hook (import env.allocFault) while it counts.
export { faultHookSet } from "./runtime/fault";
