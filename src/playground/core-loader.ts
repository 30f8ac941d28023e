/**
 * How the playground's worker gets its Wasm core: build.mjs copies core.wasm next to the
 * worker bundle, and the library's async loader (src/wasm/load.ts) fetches and compiles it
 * and makes it the default module, so every `new WasmCore()` inside the library (the
 * migration engine's, each simulated process's) uses it too.
 */
import type { WasmCore } from "../wasm/core";
import { loadCore } from "../wasm/load";

/** Loads core.wasm from beside the worker script; resolves to a core on it. */
export function loadPlaygroundCore(): Promise<WasmCore> {
  // The URL is spelt out: the bundle's core-location is the CommonJS flavour (no import.meta).
  const here = (globalThis as unknown as { location: { href: string } }).location.href;
  return loadCore(new URL("core.wasm", here));
}
