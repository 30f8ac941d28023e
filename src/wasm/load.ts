/**
 * Asynchronous loading of the compiled core, for hosts where files cannot be read
 * synchronously: browsers (fetch + WebAssembly.compileStreaming), bundles (the asset URL
 * of core-location), and Node ESM code that prefers not to block. After `await init()`,
 * every WasmCore created without a module (and so every entry point) uses the module.
 */
import { coreWasmCandidates } from "./core-location";
import { WasmCore } from "./core";
import { isFileLocation, nodeFs, setDefaultCoreModule } from "./module";
import { isWasmModule, wasmApi, type ResponseLike, type WasmBytes, type WasmModule } from "./webassembly-types";

/**
 * Where `init()` gets the core from: a compiled module, the binary's bytes, a fetch
 * Response (or its promise), or a URL / path of core.wasm. Omitted: this build's own
 * core.wasm (beside the module in dist/, or the bundler's asset).
 */
export type CoreSource = WasmModule | WasmBytes | ResponseLike | PromiseLike<ResponseLike> | string | URL;

type Fetch = (url: string) => Promise<ResponseLike & { ok?: boolean; status?: number }>;

const isResponse = (x: unknown): x is ResponseLike => typeof x === "object" && x !== null && typeof (x as ResponseLike).arrayBuffer === "function";
const isThenable = (x: unknown): x is PromiseLike<ResponseLike> => typeof x === "object" && x !== null && typeof (x as PromiseLike<unknown>).then === "function";

/** Compiles a Response, streaming where the host can; a server that does not send application/wasm makes compileStreaming throw, so the bytes are compiled instead. */
async function compileResponse(res: ResponseLike): Promise<WasmModule> {
  const wa = wasmApi();
  if (typeof wa.compileStreaming === "function" && typeof res.clone === "function") {
    const copy = res.clone();
    try {
      return await wa.compileStreaming(res);
    } catch {
      return wa.compile(await copy.arrayBuffer());
    }
  }
  return wa.compile(await res.arrayBuffer());
}

async function compileLocation(loc: string | URL): Promise<WasmModule> {
  const fs = nodeFs();
  // Node's fetch does not read file: URLs; its fs does.
  if (fs !== undefined && isFileLocation(loc)) return wasmApi().compile(await fs.promises.readFile(loc));
  const f = (globalThis as { fetch?: Fetch }).fetch;
  if (typeof f !== "function") throw new Error(`vfio-sim: cannot load ${String(loc)}: this host has neither fetch nor Node's fs`);
  const res = await f(String(loc));
  if (res.ok === false) throw new Error(`vfio-sim: cannot load the Wasm core from ${String(loc)}: HTTP ${res.status ?? "error"}`);
  return compileResponse(res);
}

async function compileSource(source: CoreSource | undefined): Promise<WasmModule> {
  if (source === undefined) {
    const errors: string[] = [];
    for (const loc of coreWasmCandidates()) {
      try {
        return await compileLocation(loc);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    throw new Error(`vfio-sim: cannot load the Wasm core (${errors.join("; ") || "no location known"}); pass its URL or bytes to init()`);
  }
  if (isWasmModule(source)) return source as WasmModule;
  if (typeof source === "string" || source instanceof URL) return compileLocation(source);
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) return wasmApi().compile(source);
  if (isResponse(source)) return compileResponse(source);
  if (isThenable(source)) return compileResponse(await source);
  throw new TypeError("init: source must be a WebAssembly.Module, bytes, a Response, or the URL of core.wasm");
}

/**
 * Loads and compiles the core asynchronously and makes it the default module, so that
 * `new WasmCore()` and every entry point work afterwards in any host. Resolves to the
 * compiled module. Calling it again replaces the default.
 */
export async function init(source?: CoreSource): Promise<WasmModule> {
  const m = await compileSource(source);
  setDefaultCoreModule(m);
  return m;
}

/** `init(source)`, then a new WasmCore on the module. */
export async function loadCore(source?: CoreSource): Promise<WasmCore> {
  return new WasmCore(await init(source));
}
