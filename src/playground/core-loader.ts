/**
 * How the playground's worker gets its Wasm core: core.wasm is copied next to the bundle
 * by the build (build.mjs).
 *
 * Interim bridge until the library has a browser loader: the bundle maps node:fs to a shim
 * whose readFileSync hands back the bytes fetched here, so the library's own
 * compiledCore() (used by every `new WasmCore()`) compiles them.
 */
import { WasmCore } from "../wasm/core";

/** Fetches core.wasm from beside the worker script and returns a core on it. */
export async function loadPlaygroundCore(): Promise<WasmCore> {
  const here = (globalThis as unknown as { location: { href: string } }).location.href;
  const res = await fetch(new URL("core.wasm", here));
  if (!res.ok) throw new Error(`GET core.wasm: HTTP ${res.status}`);
  (globalThis as Record<string, unknown>).__vfioSimCoreBytes = new Uint8Array(await res.arrayBuffer());
  return new WasmCore();
}
