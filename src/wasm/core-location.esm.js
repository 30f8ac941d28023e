// The ESM flavour of core-location.ts (see there); scripts/build-esm.mjs copies it over
// dist/esm/wasm/core-location.js. Bundlers that understand the pattern (Vite, webpack)
// emit core.wasm as an asset and rewrite the URL; in Node it is a file: URL.
export function coreWasmCandidates() {
  return [new URL("./core.wasm", import.meta.url)];
}
