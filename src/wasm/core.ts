/**
 * The Wasm boundary. Instantiates the compiled core (core.wasm, built from assembly/) and
 * owns its linear memory: allocation, zeroing, growth, and byte views that are re-read
 * after growth. Where the module comes from (a file in Node, fetch in browsers, a bundler's
 * asset) is ./module.ts's and ./load.ts's business; nothing here touches files.
 *
 * Everything that crosses the boundary is a number: pointers and byte lengths are
 * wasm32 `usize` (0 .. 2^32-1), bit indices are u32. See assembly/index.ts for the
 * exported kernels.
 */
import { FAULT_KIND_BY_CODE, FaultInjector } from "./fault";
import { defaultCoreModule, loadedCoreModule, setDefaultCoreModule } from "./module";
import { isWasmModule, wasmApi, type WasmMemory, type WasmModule } from "./webassembly-types";

/** The raw exports of build/core.wasm, as the AssemblyScript sources declare them. */
export interface CoreExports {
  readonly memory: WasmMemory;
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
  faultHookSet(on: number): void;
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

/**
 * What the high-level entries (createVfioProcess, runMigration, replayTrace, the typed
 * APIs) accept as their core: a WasmCore to share, or the compiled module to instantiate.
 */
export type CoreInput = WasmCore | WasmModule;

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

  /** The compiled module this core is an instance of (instantiate more cores from it). */
  readonly module: WasmModule;

  /**
   * A fresh instance of `wasm`, or of the default module: the one `init()` loaded, or in
   * Node the build's core.wasm, read synchronously on first use.
   */
  constructor(wasm: WasmModule = defaultCoreModule()) {
    const allocFault = (code: number): number => (this.faults.shouldFail(FAULT_KIND_BY_CODE[code] ?? "heap") ? 1 : 0);
    this.module = wasm;
    const instance = new (wasmApi().Instance)(wasm, { env: { allocFault } });
    this.x = normaliseExports(instance.exports as unknown as CoreExports);
    this.faults.onArmedChange = (armed) => this.x.faultHookSet(armed ? 1 : 0);
    this.buf = this.x.memory.buffer;
    this.u8view = new Uint8Array(this.buf);
    this.dview = new DataView(this.buf);
  }

  /**
   * The core an entry point runs on: `input` itself when it is a WasmCore, else a new
   * instance of the module given (or of the default one). A module given when no default
   * is loaded yet becomes the default, as `init(module)` would make it, so the cores an
   * entry creates internally (one per simulated device, say) use it too.
   */
  static from(input?: CoreInput): WasmCore {
    if (input === undefined) return new WasmCore();
    if (isWasmModule(input)) {
      if (loadedCoreModule() === undefined) setDefaultCoreModule(input);
      return new WasmCore(input);
    }
    if (isWasmCore(input)) return input as WasmCore;
    throw new TypeError("core must be a WasmCore or a compiled WebAssembly.Module");
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

/**
 * Whether `x` is a WasmCore, also one from another copy of this package (the ESM and the
 * CommonJS builds each have their own class).
 */
export function isWasmCore(x: unknown): boolean {
  if (x instanceof WasmCore) return true;
  const c = x as Partial<WasmCore> | null;
  return typeof c === "object" && c !== null && typeof c.alloc === "function" && typeof c.x === "object" && isWasmModule(c.module);
}
