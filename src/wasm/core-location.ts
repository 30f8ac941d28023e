/**
 * Where this build's compiled core lies, first found wins. This is the CommonJS flavour,
 * compiled into dist/ and run by the tests from src/: beside this module (dist/wasm/, or
 * beside a CommonJS bundle), then build/ at the package root.
 *
 * The ESM build (scripts/build-esm.mjs) puts core-location.esm.js in its place, whose
 * `new URL("./core.wasm", import.meta.url)` is the pattern Vite and webpack turn into an
 * asset (esbuild keeps it as written: the Wasm then belongs beside the bundle). That
 * syntax cannot appear here: `import.meta` does not parse in CommonJS.
 */
export function coreWasmCandidates(): Array<string | URL> {
  return typeof __dirname === "string" ? [`${__dirname}/core.wasm`, `${__dirname}/../../build/core.wasm`] : [];
}
