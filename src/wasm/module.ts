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
 * The first of `candidates` that reads as a file, compiled; `what` names it in the error
 * that lists what was tried.
 */
function compileFirstFile(fs: NodeFsLike, candidates: Array<string | URL>, what: string): WasmModule {
  const tried: string[] = [];
  for (const loc of candidates) {
    if (!isFileLocation(loc)) continue;
    let bytes: Uint8Array;
    try {
      bytes = fs.readFileSync(loc);
    } catch {
      tried.push(String(loc));
      continue;
    }
    return new (wasmApi().Module)(bytes);
  }
  throw new Error(`vfio-sim: cannot find ${what} (tried ${tried.join(", ") || "nothing"}; run \`npm run build\`)`);
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
  defaultModule = compileFirstFile(fs, coreWasmCandidates(), "the Wasm core");
  return defaultModule;
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

let sharedModule: WasmModule | undefined;

/**
 * The compiled shared-memory build (core.shared.wasm, assembly/shared.ts), read and compiled
 * once per process; or, given a path or file: URL, that file compiled afresh. Node only:
 * threads in this package are worker_threads (src/threads).
 */
export function compiledSharedCore(path?: string | URL): WasmModule {
  if (path === undefined && sharedModule !== undefined) return sharedModule;
  const fs = nodeFs();
  if (fs === undefined) throw new Error("vfio-sim: the shared-memory core is read from disk and needs Node >= 20.16");
  if (path !== undefined) return new (wasmApi().Module)(fs.readFileSync(path));
  sharedModule = compileFirstFile(fs, coreWasmCandidates("core.shared.wasm"), "the shared Wasm core");
  return sharedModule;
}
