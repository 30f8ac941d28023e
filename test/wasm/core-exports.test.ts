import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { WasmCore } from "../../src/wasm/core";
import { wasmApi } from "../../src/wasm/webassembly-types";

// The boundary's types (src/wasm/core-exports.ts) are generated from the AssemblyScript
// sources by asc --bindings raw (issue 14): they must be what the sources give now, and
// the compiled core must export exactly what they declare, with the declared arities.
const ROOT = join(__dirname, "../..");

test("core-exports.ts is what asc --bindings raw gives for assembly/ today", () => {
  // Throws (exit 1, with the reason on stderr) when the file is stale.
  const out = execFileSync(process.execPath, [join(ROOT, "scripts/gen-core-types.mjs"), "--check"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  expect(out).toMatch(/matches/);
});

test("core.wasm exports exactly the generated CoreExports, with their arities", () => {
  const text = readFileSync(join(ROOT, "src/wasm/core-exports.ts"), "utf8");
  const body = text.slice(text.indexOf("export interface CoreExports {"), text.indexOf("\n}\n"));
  const declared = new Map<string, number>();
  for (const m of body.matchAll(/^ {2}(\w+)\(([^)]*)\)/gm)) declared.set(m[1], m[2].trim() === "" ? 0 : m[2].split(",").length);
  expect(body).toMatch(/readonly memory: WasmMemory;/);

  const core = new WasmCore();
  const exported = wasmApi().Module.exports(core.module);
  const functions = exported.filter((e) => e.kind === "function").map((e) => e.name);
  expect(functions.sort()).toEqual([...declared.keys()].sort());
  expect(exported.filter((e) => e.kind !== "function").map((e) => `${e.kind}:${e.name}`)).toEqual(["memory:memory"]);
  const raw = new (wasmApi().Instance)(core.module, { env: { allocFault: () => 0 } }).exports;
  for (const [name, arity] of declared) expect([name, (raw[name] as (...a: number[]) => number).length]).toEqual([name, arity]);
});
