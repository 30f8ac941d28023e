#!/usr/bin/env node
// The ESM build: `tsc -p src/tsconfig.esm.json` has written dist/esm (the library without
// the CLI); this script makes it loadable as ES modules by Node and browsers and installs
// the Wasm core beside both builds' loaders:
//  - relative specifiers get their file ("./wasm/core" -> "./wasm/core.js", "./uapi" ->
//    "./uapi/index.js") in .js and .d.ts files, since ESM resolution does not guess;
//  - dist/esm/wasm/core-location.js becomes src/wasm/core-location.esm.js (the
//    `new URL("./core.wasm", import.meta.url)` flavour);
//  - dist/esm/package.json marks the tree as ES modules;
//  - build/core.wasm is copied to dist/wasm/ and dist/esm/wasm/.
// Run by `npm run build` after both tsc passes.
import { copyFileSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const esm = join(root, "dist", "esm");

function* files(dir) {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) yield* files(p);
    else yield p;
  }
}

/** The specifier with its file made explicit, relative to `from`'s folder. */
function withFile(from, spec) {
  if (!spec.startsWith("./") && !spec.startsWith("../")) return spec;
  if (/\.(m?js|json|wasm)$/.test(spec)) return spec;
  const base = resolve(dirname(from), spec);
  if (existsSync(`${base}.js`)) return `${spec}.js`;
  if (existsSync(join(base, "index.js"))) return `${spec}/index.js`;
  throw new Error(`build-esm: ${from}: cannot resolve ${spec}`);
}

const SPEC = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])(\.{1,2}\/[^"']*)\2/g;
let rewritten = 0;
for (const f of files(esm)) {
  if (!f.endsWith(".js") && !f.endsWith(".d.ts")) continue;
  const src = readFileSync(f, "utf8");
  const out = src.replace(SPEC, (_m, pre, q, spec) => `${pre}${q}${withFile(f, spec)}${q}`);
  if (out !== src) {
    writeFileSync(f, out);
    rewritten++;
  }
}

copyFileSync(join(root, "src", "wasm", "core-location.esm.js"), join(esm, "wasm", "core-location.js"));
rmSync(join(esm, "wasm", "core-location.js.map"), { force: true });
writeFileSync(join(esm, "package.json"), `${JSON.stringify({ type: "module" }, null, 2)}\n`);
for (const dir of [join(root, "dist", "wasm"), join(esm, "wasm")]) copyFileSync(join(root, "build", "core.wasm"), join(dir, "core.wasm"));
console.log(`build-esm: ${rewritten} files with explicit specifiers; core.wasm beside both loaders`);
