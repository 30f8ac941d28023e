import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { UNSIGNED_RESULTS, WasmCore } from "../../src/wasm/core";

// Every export of the core whose AssemblyScript result type is usize or u32 must be read
// through `>>> 0` (UNSIGNED_RESULTS); an export added later without it would give negative
// addresses above 2 GiB again (issue 11, F2).
function assemblySignatures(): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith(".ts")) {
        const src = readFileSync(p, "utf8");
        for (const m of src.matchAll(/export function (\w+)\s*\([^)]*\)\s*:\s*(\w+)/g)) out.set(m[1], m[2]);
      }
    }
  };
  walk(join(__dirname, "../../assembly"));
  return out;
}

test.each([["default", () => new WasmCore()], ["shared", () => WasmCore.createShared()]] as const)("%s build: every usize/u32 result that crosses the Wasm boundary is normalised to unsigned", (_name, make) => {
  const sigs = assemblySignatures();
  const core = make();
  const exported = Object.keys(core.x).filter((k) => typeof (core.x as unknown as Record<string, unknown>)[k] === "function");
  const unsigned = exported.filter((name) => ["usize", "u32"].includes(sigs.get(name) ?? ""));
  expect(exported.every((name) => sigs.has(name))).toBe(true);
  expect([...unsigned].sort()).toEqual([...UNSIGNED_RESULTS].sort());
});
