/**
 * The acceptance test: every recorded trace replays to exactly the bytes the kernel printed
 * under the kernel oracle. Each directory is recorded on one kernel and replayed with that
 * kernel's profile (`linux-6.1/` and `new/`: Linux 6.1.192; `linux-6.12/`: 6.12.111).
 * Files are discovered, so new recordings are picked up.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { WasmCore } from "../../src/wasm/core";
import { replayTrace } from "../../src/trace";
import type { Type1Profile } from "../../src/type1";

const ROOT = __dirname;
/** Each corpus directory and the profile of the kernel it was recorded on. */
const CORPUS: ReadonlyArray<{ dir: string; profile: Type1Profile }> = [
  { dir: "linux-6.1", profile: "linux-6.1" },
  { dir: "new", profile: "linux-6.1" },
  { dir: "linux-6.12", profile: "linux-6.12" },
];

const core = new WasmCore();

for (const { dir, profile } of CORPUS) {
  let files: string[] = [];
  try {
    files = readdirSync(join(ROOT, dir)).filter((f) => f.endsWith(".trace"));
  } catch {
    continue;
  }
  describe(`conformance/${dir} (profile ${profile})`, () => {
    for (const f of files) {
      it(`${f} replays byte for byte`, () => {
        const trace = readFileSync(join(ROOT, dir, f), "utf8");
        const want = readFileSync(join(ROOT, dir, f.replace(/\.trace$/, ".out")), "utf8");
        const got = replayTrace(trace, { core, type1: { profile } });
        // Compare line by line first so a failure names the first differing line.
        const g = got.split("\n");
        const w = want.split("\n");
        for (let i = 0; i < w.length; i++) if (g[i] !== w[i]) expect(`${i + 1}: ${g[i]}`).toBe(`${i + 1}: ${w[i]}`);
        expect(got).toBe(want);
      });
    }
  });
}
