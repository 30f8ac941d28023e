/**
 * The acceptance test: every recorded trace (Linux 6.1 under the kernel oracle) replays to
 * exactly the bytes the kernel printed. Files are discovered, so new recordings are picked up.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { WasmCore } from "../../src/wasm/core";
import { replayTrace } from "../../src/trace";

const ROOT = __dirname;
const DIRS = ["linux-6.1", "new"];

const core = new WasmCore();

for (const dir of DIRS) {
  let files: string[] = [];
  try {
    files = readdirSync(join(ROOT, dir)).filter((f) => f.endsWith(".trace"));
  } catch {
    continue;
  }
  describe(`conformance/${dir}`, () => {
    for (const f of files) {
      it(`${f} replays byte for byte`, () => {
        const trace = readFileSync(join(ROOT, dir, f), "utf8");
        const want = readFileSync(join(ROOT, dir, f.replace(/\.trace$/, ".out")), "utf8");
        const got = replayTrace(trace, { core });
        // Compare line by line first so a failure names the first differing line.
        const g = got.split("\n");
        const w = want.split("\n");
        for (let i = 0; i < w.length; i++) if (g[i] !== w[i]) expect(`${i + 1}: ${g[i]}`).toBe(`${i + 1}: ${w[i]}`);
        expect(got).toBe(want);
      });
    }
  });
}
