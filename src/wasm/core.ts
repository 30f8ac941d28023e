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
import { isWasmModule, wasmApi, type WasmModule } from "./webassembly-types";
import { UNSIGNED_RESULTS, type CoreExports } from "./core-exports";

// The boundary's types are generated from assembly/ (scripts/gen-core-types.mjs).
export type { CoreExports } from "./core-exports";
export { UNSIGNED_RESULTS } from "./core-exports";

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
