/**
 * The Wasm boundary. Instantiates the compiled core (core.wasm, built from assembly/) and
 * owns its linear memory: allocation, zeroing, growth, and byte views that are re-read
 * after growth. Where the module comes from (a file in Node, fetch in browsers, a bundler's
 * asset) is ./module.ts's and ./load.ts's business; nothing here touches files.
 *
 * Everything that crosses the boundary is a number: pointers and byte lengths are
 * wasm32 `usize` (0 .. 2^32-1), bit indices are u32. See assembly/index.ts for the
 * exported kernels.
 *
 * Two builds. The default, core.wasm, owns a private memory: single-threaded, and
 * what every subsystem uses unless told otherwise. The shared build, core.shared.wasm
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
import { FAULT_KIND_BY_CODE, FaultInjector } from "./fault";
import { compiledSharedCore, defaultCoreModule, loadedCoreModule, setDefaultCoreModule } from "./module";
import { isWasmModule, wasmApi, type WasmMemory, type WasmModule } from "./webassembly-types";
import { UNSIGNED_RESULTS, type CoreExports } from "./core-exports";

// The boundary's types are generated from assembly/ (scripts/gen-core-types.mjs).
export type { CoreExports } from "./core-exports";
export { UNSIGNED_RESULTS } from "./core-exports";

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

/** Initial size of a shared core's memory, in 64 KiB pages (as the default build's). */
const SHARED_INITIAL_PAGES = 16;
/** Largest a shared memory may grow, in 64 KiB pages: 65536 = 4 GiB, the wasm32 limit. */
export const SHARED_MAX_PAGES = 65536;

/** Imports of one instance: the fault hook (its owner's), and the memory for the shared build. */
function coreImports(allocFault: (code: number) => number, memory?: WasmMemory): Record<string, Record<string, unknown>> {
  return { env: memory ? { allocFault, memory } : { allocFault } };
}

/**
 * Instantiates the shared build on an existing shared memory, for a thread that runs kernels
 * only (see the module comment): no allocator, no fault injection (its hook answers "no").
 * Usable from any thread; `module` and `memory` come from the owner's `WasmCore`.
 */
export function instantiateSharedCore(module: WasmModule, memory: WasmMemory): SharedCoreExports {
  const instance = new (wasmApi().Instance)(module, coreImports(() => 0, memory));
  return normaliseExports(instance.exports as unknown as CoreExports) as SharedCoreExports;
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

  /** The shared memory (shared build), or null for the default, private-memory core. */
  readonly sharedMemory: WasmMemory | null;

  /**
   * A fresh instance of `wasm`, or of the default module: the one `init()` loaded, or in
   * Node the build's core.wasm, read synchronously on first use. With `sharedMemory`,
   * `wasm` must be the shared build (compiledSharedCore) and this core becomes the
   * memory's owner.
   */
  constructor(wasm: WasmModule = defaultCoreModule(), sharedMemory: WasmMemory | null = null) {
    const allocFault = (code: number): number => (this.faults.shouldFail(FAULT_KIND_BY_CODE[code] ?? "heap") ? 1 : 0);
    this.module = wasm;
    this.sharedMemory = sharedMemory;
    const instance = new (wasmApi().Instance)(wasm, coreImports(allocFault, sharedMemory ?? undefined));
    this.x = normaliseExports(instance.exports as unknown as CoreExports);
    this.faults.onArmedChange = (armed) => this.x.faultHookSet(armed ? 1 : 0);
    this.buf = this.x.memory.buffer;
    this.u8view = new Uint8Array(this.buf);
    this.dview = new DataView(this.buf);
  }

  /**
   * A core on the shared build whose linear memory is a new shared `WebAssembly.Memory`
   * (growable to `maxPages` 64 KiB pages): this thread owns it; pass `module` and
   * `sharedMemory` to workers, which call instantiateSharedCore. Node only for now (the
   * shared build is read from disk: compiledSharedCore).
   */
  static createShared(maxPages: number = SHARED_MAX_PAGES): WasmCore {
    const memory = new (wasmApi().Memory)({ initial: SHARED_INITIAL_PAGES, maximum: maxPages, shared: true });
    return new WasmCore(compiledSharedCore(), memory);
  }

  /** The atomic kernels, when this core is the shared build (null otherwise). */
  get atomics(): SharedCoreExports | null {
    return this.sharedMemory ? (this.x as SharedCoreExports) : null;
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
    // Growing a private memory detaches the old buffer, so a view of it with bytes in it
    // is still current: that test costs a field read, where asking `memory.buffer` is a
    // call into the engine on every access. A shared memory's buffer never detaches (it
    // is only replaced by a longer one), so that one is always asked.
    if (this.sharedMemory === null && this.u8view.length !== 0) return;
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
    if (size <= SMALL_MAX) {
      // A small block: a freed one of its class when there is one, else a new one of the
      // class's whole size (so it can serve any size of the class later).
      const cls = size === 0 ? 0 : (size - 1) >> SMALL_SHIFT;
      const list = this.smallFree[cls];
      if (list.length > 0) {
        const p = list.pop()!;
        if (zero) this.zeroSmall(p, (cls + 1) << SMALL_SHIFT);
        this.liveBlocks++;
        return p;
      }
      size = (cls + 1) << SMALL_SHIFT;
    }
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

  /**
   * Frees a block from `alloc(size)`, `size` being what was asked for: a small block goes to
   * its class's free list (up to SMALL_KEEP of them) for the next alloc of that class.
   */
  freeSized(ptr: number, size: number): void {
    if (ptr === 0) return;
    if (size <= SMALL_MAX) {
      const list = this.smallFree[size === 0 ? 0 : (size - 1) >> SMALL_SHIFT];
      if (list.length < SMALL_KEEP) {
        list.push(ptr);
        this.liveBlocks--;
        return;
      }
    }
    this.free(ptr);
  }

  /**
   * Freed small blocks by size class (16, 32, 48 and 64 bytes), reused before the Wasm
   * allocator is asked: each type1 dma's dirty bitmap is one (a two-page mapping's is 16
   * bytes), and a VMM maps and unmaps them by the thousand, where the call into TLSF and
   * back cost as much as the rest of allocating the bitmap. Bounded: SMALL_KEEP per class
   * (160 KiB at most in all), the rest go back to TLSF.
   */
  private readonly smallFree: number[][] = [[], [], [], []];

  /** Zeroes `bytes` (a multiple of 16) at the 16-byte aligned `p`. */
  private zeroSmall(p: number, bytes: number): void {
    const dv = this.dv;
    for (let o = 0; o < bytes; o += 8) dv.setFloat64(p + o, 0);
  }
}

/** The largest small block (see WasmCore.smallFree) and log2 of the class step. */
const SMALL_MAX = 64;
const SMALL_SHIFT = 4;
const SMALL_KEEP = 1024;

/**
 * Whether `x` is a WasmCore, also one from another copy of this package (the ESM and the
 * CommonJS builds each have their own class).
 */
export function isWasmCore(x: unknown): boolean {
  if (x instanceof WasmCore) return true;
  const c = x as Partial<WasmCore> | null;
  return typeof c === "object" && c !== null && typeof c.alloc === "function" && typeof c.x === "object" && isWasmModule(c.module);
}
