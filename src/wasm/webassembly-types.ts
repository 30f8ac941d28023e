/**
 * The slice of the WebAssembly JS API this package uses, as local (non-global) types.
 * Node and browsers have the API at run time, but @types/node 20 does not declare it and
 * the DOM lib does: a global declaration shipped in our .d.ts files collides with a
 * consumer's DOM lib (TS2300 "Duplicate identifier"), and the DOM lib in this project
 * would type timers the browser's way for Node code. The types are structural, so a real
 * `WebAssembly.Module` or `WebAssembly.Memory` is assignable to them.
 */

/**
 * A compiled WebAssembly module (a `WebAssembly.Module`), here always the compiled core
 * (`core.wasm`). Opaque: `object` because lib.dom's `WebAssembly.Module` is an empty
 * interface too.
 */
export type WasmModule = object;

/** A `WebAssembly.Memory`: the core's linear memory. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(delta: number): number;
}

/** The bytes of a Wasm binary. */
export type WasmBytes = ArrayBuffer | ArrayBufferView;

/** The part of a fetch `Response` that compiling a Wasm binary reads. */
export interface ResponseLike {
  arrayBuffer(): Promise<ArrayBuffer>;
  clone?(): ResponseLike;
}

/** The WebAssembly namespace as this package calls it. */
interface WebAssemblyApi {
  Module: (new (bytes: WasmBytes) => WasmModule) & { exports(m: WasmModule): Array<{ name: string; kind: string }> };
  Instance: new (m: WasmModule, imports: Record<string, Record<string, unknown>>) => { readonly exports: Record<string, unknown> };
  compile(bytes: WasmBytes): Promise<WasmModule>;
  compileStreaming?(source: ResponseLike | PromiseLike<ResponseLike>): Promise<WasmModule>;
}

/** The host's WebAssembly namespace, typed by the interface above. */
export function wasmApi(): WebAssemblyApi {
  const wa = (globalThis as unknown as { WebAssembly?: WebAssemblyApi }).WebAssembly;
  if (wa === undefined) throw new Error("vfio-sim: this JavaScript host has no WebAssembly");
  return wa;
}

/**
 * Whether `x` is a compiled `WebAssembly.Module` (the global class, so any copy of this
 * package agrees). Not a type guard: WasmModule is `object`, and a false result must not
 * narrow every other object type away.
 */
export function isWasmModule(x: unknown): boolean {
  const wa = (globalThis as unknown as { WebAssembly?: WebAssemblyApi }).WebAssembly;
  return wa !== undefined && x instanceof wa.Module;
}
