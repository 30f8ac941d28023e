// Entry point of the shared-memory build (asconfig target "shared", build/core.shared.wasm):
// every export of the default core (./index), plus the kernels that devices running in
// other threads need. Compiled with --enable threads against an imported shared memory; the
// default build (./index, build/core.wasm) stays single-threaded and unchanged.
//
// Rule of the boundary: one thread owns the memory. Only it allocates (the heap, table
// pages) and maps or unmaps; every instance has its own globals (allocator state, walk
// results), so an allocation from another instance would corrupt the owner's heap. Other
// threads instantiate the same module on the same memory and run kernels only: device
// accesses and dirty updates (./pgtable/atomic) and atomic software-bitmap updates
// (./bitmap/atomic). Instantiating re-applies the module's data segment (the harvest's
// 64-byte scratch, zeroes), so workers are started before the owner runs any kernel.
export * from "./index";
export { ptDeviceAccessAtomic, ptDeviceWriteAtomic, pteDirtyUpdateAtomic, ptReadDirtyAtomic, ptWriteProtectAtomic } from "./pgtable/atomic";
export { setRangeAtomic, takeWordsAtomic } from "./bitmap/atomic";
