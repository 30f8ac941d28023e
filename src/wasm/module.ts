/**
 * The compiled core shared by every WasmCore created without a module of its own.
 *
 * In Node it is read and compiled synchronously on first use, so `new WasmCore()` works
 * without any set-up. Node's fs is reached through `process.getBuiltinModule`: no import
 * statement names it, so bundlers have nothing to follow and browsers never get there.
 * Elsewhere, `init()` (./load.ts) compiles it asynchronously first.
 */
import { coreWasmCandidates } from "./core-location";
import { wasmApi, type WasmModule } from "./webassembly-types";

let defaultModule: WasmModule | undefined;

/** The synchronous file reading this module needs from Node's fs. */
export interface NodeFsLike {
  readFileSync(path: string | URL): Uint8Array;
  promises: { readFile(path: string | URL): Promise<Uint8Array> };
}

/** Node's fs, or undefined outside Node (or on a Node without `process.getBuiltinModule`, < 20.16). */
export function nodeFs(): NodeFsLike | undefined {
  const p = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  return typeof p?.getBuiltinModule === "function" ? (p.getBuiltinModule("node:fs") as NodeFsLike | undefined) : undefined;
}

/** Whether a location is a local file (a path, or a file: URL). */
export function isFileLocation(loc: string | URL): boolean {
  return typeof loc === "string" ? !/^[a-z][a-z0-9+.-]*:\/\//i.test(loc) || loc.startsWith("file:") : loc.protocol === "file:";
}

/** Makes `m` the module that WasmCores created without one instantiate. */
export function setDefaultCoreModule(m: WasmModule): void {
  defaultModule = m;
}

/** The default module if one is set or loaded already; never loads. */
export function loadedCoreModule(): WasmModule | undefined {
  return defaultModule;
}

/**
 * The default compiled core: the one set by `init()`/`setDefaultCoreModule`, else (Node
 * only) read from this build's core.wasm and compiled now, once per process.
 */
export function defaultCoreModule(): WasmModule {
  if (defaultModule !== undefined) return defaultModule;
  const fs = nodeFs();
  if (fs === undefined) {
    throw new Error(
      "vfio-sim: the Wasm core is not loaded: `await init()` first, or pass a compiled WebAssembly.Module or a WasmCore (synchronous loading needs Node >= 20.16)",
    );
  }
  const tried: string[] = [];
  for (const loc of coreWasmCandidates()) {
    if (!isFileLocation(loc)) continue;
    let bytes: Uint8Array;
    try {
      bytes = fs.readFileSync(loc);
    } catch {
      tried.push(String(loc));
      continue;
    }
    defaultModule = new (wasmApi().Module)(bytes);
    return defaultModule;
  }
  throw new Error(`vfio-sim: cannot find the Wasm core (tried ${tried.join(", ") || "nothing"}; run \`npm run build\`)`);
}

/**
 * The compiled core, synchronously (Node only): the default module, or, given a path or
 * file: URL, that file compiled afresh.
 */
export function compiledCore(path?: string | URL): WasmModule {
  if (path === undefined) return defaultCoreModule();
  const fs = nodeFs();
  if (fs === undefined) throw new Error("vfio-sim: compiledCore(path) reads a file and needs Node >= 20.16; use `await init(url)` elsewhere");
  return new (wasmApi().Module)(fs.readFileSync(path));
}
