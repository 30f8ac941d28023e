/**
 * The Wasm boundary. Loads build/core.wasm (compiled from assembly/) and owns its linear
 * memory: allocation, zeroing, growth, and byte views that are re-read after growth.
 *
 * Everything that crosses the boundary is a number: pointers and byte lengths are
 * wasm32 `usize` (0 .. 2^32-1), bit indices are u32. See assembly/index.ts for the
 * exported kernels.
 *
 * Two builds. The default, build/core.wasm, owns a private memory: single-threaded, and
 * what every subsystem uses unless told otherwise. The shared build, build/core.shared.wasm
 * (assembly/shared.ts, `--enable threads`, imported shared memory), is the same core plus
 * the atomic kernels for concurrent devices: `WasmCore.createShared()` gives a core whose
 * linear memory is a shared `WebAssembly.Memory` that worker threads instantiate too
 * (`instantiateSharedCore`). The rule at this boundary: the thread that created the core
 * owns its memory. Only the owner allocates (`alloc`, page-table pages, anything that may
 * grow memory) and maps or unmaps; each instance has its own globals, so an allocation
 * from another instance would corrupt the owner's heap. Other threads run kernels only:
 * device accesses and dirty updates, atomic bitmap updates, on blocks the owner allocated
 * for them. The Node-only worker side lives in src/threads/ (library modules that
 * browsers load never import worker_threads).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import "./webassembly-types";
import { FAULT_KIND_BY_CODE, FaultInjector } from "./fault";

/** The raw exports of build/core.wasm, as the AssemblyScript sources declare them. */
export interface CoreExports {
  readonly memory: WebAssembly.Memory;
  alloc(size: number): number;
  allocZeroed(size: number): number;
  free(ptr: number): void;
  copyBytes(dst: number, src: number, n: number): void;
  fillBytes(dst: number, value: number, n: number): void;
  setRange(map: number, start: number, n: number): void;
  clearRange(map: number, start: number, n: number): void;
  testRange(map: number, start: number, n: number): number;
  popcountRange(map: number, start: number, n: number): number;
  findNextSet(map: number, nbits: number, from: number): number;
  packByte(dst: number, dstBit: number, src: number, nbits: number): void;
  packWord(dst: number, dstBit: number, src: number, nbits: number): void;
  packSimd(dst: number, dstBit: number, src: number, nbits: number): void;
  orBits(dst: number, dstBit: number, src: number, nbits: number): void;
  andNotWords(dst: number, src: number, nwords: number): void;
  // I/O page tables (assembly/pgtable): addresses and sizes are f64 integers < 2^53.
  ptPagesInUse(): number;
  ptPagesFree(): number;
  ptSetPageLimit(limit: number): void;
  gatherInit(g: number): void;
  gatherRelease(g: number): void;
  gatherStart(g: number): number;
  gatherEnd(g: number): number;
  targetSet(t: number, bitmap: number, pgshift: number, base: number, bitOff: number, cap: number): void;
  targetSpillStart(t: number): number;
  targetSpillEnd(t: number): number;
  targetRecord(t: number, iova: number, len: number): void;
  ptCreate(fmt: number, levels: number, maxLevels: number, gs: number, flags: number, pgsizeLo: number, pgsizeHi: number): number;
  ptDestroy(pt: number): void;
  ptSetFlags(pt: number, flags: number): void;
  ptTables(pt: number): number;
  ptLevels(pt: number): number;
  ptMap(pt: number, iova: number, pa: number, size: number, prot: number, gather: number): number;
  ptUnmap(pt: number, iova: number, size: number, gather: number, target: number): number;
  ptIovaToPhys(pt: number, iova: number): number;
  ptLookup(pt: number, iova: number): number;
  ptDeviceAccess(pt: number, iova: number, write: number): number;
  ptDeviceDirtyUpdate(pt: number, pte: number): number;
  ptSetDirty(pt: number, iova: number): number;
  ptReadDirty(pt: number, iova: number, size: number, flags: number, target: number, gather: number): number;
  ptWriteProtect(pt: number, iova: number, size: number, target: number, gather: number): number;
  ptOutPhys(pt: number): number;
  ptOutLeafIova(pt: number): number;
  ptOutLeafSize(pt: number): number;
  ptOutPte(pt: number): number;
  ptOutNoUpdate(pt: number): number;
  ptOutLevel(pt: number): number;
  ptOutWritable(pt: number): number;
  pteLo(pte: number): number;
  pteHi(pte: number): number;
  scanXor(ptr: number, bytes: number): number;
  type1ReportAllDirty(desc: number, count: number, frames: number, userBase: number, ubuf: number): void;
  faultHookSet(on: number): void;
}

/** The shared build's extra kernels (assembly/shared.ts): safe to run from any thread. */
export interface SharedCoreExports extends CoreExports {
  /** A device walk with the atomic A/D update; 0 ok, 1 no translation, 2 permission, 3 ok and dirtied. */
  ptDeviceAccessAtomic(pt: number, iova: number, write: number, out: number): number;
  /** A device write of [iova, iova+size), leaf by leaf: PTEs it dirtied, or -1/-2 at a fault. */
  ptDeviceWriteAtomic(pt: number, iova: number, size: number): number;
  /** The atomic dirty update through a cached translation: 0/3 ok, 1 PTE gone (lost), 2 fault. */
  pteDirtyUpdateAtomic(pt: number, pte: number): number;
  /** read_and_clear_dirty with one atomic RMW per PTE (same results as ptReadDirty). */
  ptReadDirtyAtomic(pt: number, iova: number, size: number, flags: number, target: number, gather: number): number;
  /** The safe sequence's write-protect with one compare-exchange per PTE (same results as ptWriteProtect). */
  ptWriteProtectAtomic(pt: number, iova: number, size: number, target: number, gather: number): number;
  /** Sets bits [start, start+n) with atomic ORs. */
  setRangeAtomic(map: number, start: number, n: number): void;
  /** dst[i] = xchg(src[i], 0) for nwords u64 words. */
  takeWordsAtomic(dst: number, src: number, nwords: number): void;
}

/**
 * The exports whose result is a wasm32 `usize` or `u32`. A Wasm i32 result reaches JS as a
 * signed number, so an address at or above 2 GiB (or a count above 2^31) would come back
 * negative; WasmCore reads every one of these through `>>> 0`, once, here, so no caller has
 * to remember. test/wasm/unsigned-exports.test.ts checks this list against the AssemblyScript
 * signatures. (Other results are i32 on purpose, -errno, or f64.)
 */
export const UNSIGNED_RESULTS = [
  "alloc", "allocZeroed", "testRange", "popcountRange", "findNextSet",
  "ptPagesInUse", "ptPagesFree", "ptCreate", "ptTables", "ptLevels", "ptLookup",
  "ptOutPte", "ptOutNoUpdate", "ptOutLevel", "ptOutWritable", "pteLo", "pteHi", "scanXor",
] as const satisfies ReadonlyArray<keyof CoreExports>;

type NumFn = (...args: number[]) => number;

/** `f` with its result read as unsigned; fixed arities keep the hot calls cheap. */
function unsignedResult(f: NumFn): NumFn {
  switch (f.length) {
    case 0: return () => f() >>> 0;
    case 1: return (a) => f(a) >>> 0;
    case 2: return (a, b) => f(a, b) >>> 0;
    case 3: return (a, b, c) => f(a, b, c) >>> 0;
    default: return (...a) => f(...a) >>> 0;
  }
}

/** The raw exports with every UNSIGNED_RESULTS entry normalised to 0 .. 2^32-1. */
function normaliseExports(raw: CoreExports): CoreExports {
  const x: Record<string, unknown> = { ...raw };
  for (const name of UNSIGNED_RESULTS) x[name] = unsignedResult(raw[name] as unknown as NumFn);
  return x as unknown as CoreExports;
}

/** Where the compiled core lives: build/ at the package root, two levels above src/wasm or dist/wasm. */
export const DEFAULT_WASM_PATH = join(__dirname, "..", "..", "build", "core.wasm");

/** Where the shared-memory build lives. */
export const SHARED_WASM_PATH = join(__dirname, "..", "..", "build", "core.shared.wasm");

/** Initial size of a shared core's memory, in 64 KiB pages (as the default build's). */
const SHARED_INITIAL_PAGES = 16;
/** Largest a shared memory may grow, in 64 KiB pages: 65536 = 4 GiB, the wasm32 limit. */
export const SHARED_MAX_PAGES = 65536;

/** Imports of one instance: the fault hook (its owner's), and the memory for the shared build. */
function coreImports(allocFault: (code: number) => number, memory?: WebAssembly.Memory): Record<string, Record<string, unknown>> {
  return { env: memory ? { allocFault, memory } : { allocFault } };
}

/**
 * Instantiates the shared build on an existing shared memory, for a thread that runs kernels
 * only (see the module comment): no allocator, no fault injection (its hook answers "no").
 * Usable from any thread; `module` and `memory` come from the owner's `WasmCore`.
 */
export function instantiateSharedCore(module: WebAssembly.Module, memory: WebAssembly.Memory): SharedCoreExports {
  const instance = new WebAssembly.Instance(module, coreImports(() => 0, memory));
  return normaliseExports(instance.exports as unknown as CoreExports) as SharedCoreExports;
}

/**
 * One instance of the Wasm core: a private linear memory and its allocator.
 *
 * Views (`u8`, `dv`) are cached and re-created whenever the memory has grown, because
 * growth detaches the old ArrayBuffer. Never keep a view across a call that allocates.
 */
export class WasmCore {
  /** The kernels, called directly on hot paths (usize/u32 results already unsigned). */
  readonly x: CoreExports;
  /** Counts allocations of this core and fails the chosen one (tests; see ./fault.ts). */
  readonly faults = new FaultInjector();
  /** Blocks from `alloc` not yet freed (leak checks in tests). */
  liveBlocks = 0;
  private buf: ArrayBuffer;
  private u8view: Uint8Array;
  private dview: DataView;

  /** The module this core was instantiated from (workers instantiate it too when shared). */
  readonly module: WebAssembly.Module;
  /** The shared memory (shared build), or null for the default, private-memory core. */
  readonly sharedMemory: WebAssembly.Memory | null;

  /**
   * Instantiates `wasm` (the default build unless given). With `sharedMemory`, `wasm` must
   * be the shared build (compiledSharedCore) and this core becomes the memory's owner.
   */
  constructor(wasm: WebAssembly.Module = compiledCore(), sharedMemory: WebAssembly.Memory | null = null) {
    const allocFault = (code: number): number => (this.faults.shouldFail(FAULT_KIND_BY_CODE[code] ?? "heap") ? 1 : 0);
    const instance = new WebAssembly.Instance(wasm, coreImports(allocFault, sharedMemory ?? undefined));
    this.module = wasm;
    this.sharedMemory = sharedMemory;
    this.x = normaliseExports(instance.exports as unknown as CoreExports);
    this.faults.onArmedChange = (armed) => this.x.faultHookSet(armed ? 1 : 0);
    this.buf = this.x.memory.buffer;
    this.u8view = new Uint8Array(this.buf);
    this.dview = new DataView(this.buf);
  }

  /**
   * A core on the shared build whose linear memory is a new shared `WebAssembly.Memory`
   * (growable to `maxPages` 64 KiB pages): this thread owns it; pass `module` and
   * `sharedMemory` to workers, which call instantiateSharedCore.
   */
  static createShared(maxPages: number = SHARED_MAX_PAGES): WasmCore {
    const memory = new WebAssembly.Memory({ initial: SHARED_INITIAL_PAGES, maximum: maxPages, shared: true });
    return new WasmCore(compiledSharedCore(), memory);
  }

  /** The atomic kernels, when this core is the shared build (null otherwise). */
  get atomics(): SharedCoreExports | null {
    return this.sharedMemory ? (this.x as SharedCoreExports) : null;
  }

  private refresh(): void {
    if (this.x.memory.buffer !== this.buf) {
      this.buf = this.x.memory.buffer;
      this.u8view = new Uint8Array(this.buf);
      this.dview = new DataView(this.buf);
    }
  }

  /** All of linear memory as bytes; valid until the next allocation. */
  get u8(): Uint8Array {
    this.refresh();
    return this.u8view;
  }

  /** All of linear memory as a DataView; valid until the next allocation. */
  get dv(): DataView {
    this.refresh();
    return this.dview;
  }

  /** Current size of linear memory in bytes. */
  get memoryBytes(): number {
    return this.x.memory.buffer.byteLength;
  }

  /**
   * Allocates `size` bytes, zeroed unless `zero` is false, 16-byte aligned.
   * Returns 0 (and allocates nothing) when linear memory cannot grow that far.
   */
  alloc(size: number, zero = true): number {
    if (!Number.isInteger(size) || size < 0 || size > 0xffff_0000) return 0;
    if (this.faults.shouldFail("heap")) return 0;
    try {
      const p = zero ? this.x.allocZeroed(Math.max(size, 1)) : this.x.alloc(Math.max(size, 1));
      this.liveBlocks++;
      return p;
    } catch {
      // The allocator traps (unreachable) when memory.grow fails: that is ENOMEM, not a bug.
      return 0;
    }
  }

  /** Frees a block from `alloc`. */
  free(ptr: number): void {
    if (ptr === 0) return;
    this.x.free(ptr);
    this.liveBlocks--;
  }
}

let cachedModule: WebAssembly.Module | undefined;

/** The compiled core module, compiled once per process and shared by every WasmCore. */
export function compiledCore(path: string = DEFAULT_WASM_PATH): WebAssembly.Module {
  if (path !== DEFAULT_WASM_PATH) return new WebAssembly.Module(readFileSync(path));
  if (!cachedModule) {
    try {
      cachedModule = new WebAssembly.Module(readFileSync(path));
    } catch (e) {
      throw new Error(`vfio-sim: cannot load the Wasm core at ${path} (run \`npm run build\`): ${(e as Error).message}`);
    }
  }
  return cachedModule;
}

let cachedSharedModule: WebAssembly.Module | undefined;

/** The compiled shared-memory build, compiled once per process. */
export function compiledSharedCore(path: string = SHARED_WASM_PATH): WebAssembly.Module {
  if (path !== SHARED_WASM_PATH) return new WebAssembly.Module(readFileSync(path));
  if (!cachedSharedModule) {
    try {
      cachedSharedModule = new WebAssembly.Module(readFileSync(path));
    } catch (e) {
      throw new Error(`vfio-sim: cannot load the shared Wasm core at ${path} (run \`npm run build\`): ${(e as Error).message}`);
    }
  }
  return cachedSharedModule;
}
