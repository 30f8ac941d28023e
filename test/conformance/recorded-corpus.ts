/**
 * One recorded corpus as a Jest suite: every `.trace` in `dir` replays (on one shared core)
 * to exactly the bytes of its `.out`, as the kernel printed them. Files are discovered, so
 * new recordings are picked up. The first differing line is reported by number.
 */
import { readFileSync, readdirSync } from "node:fs";
import { basename, join } from "node:path";
import { WasmCore } from "../../src/wasm/core";
import { replayTrace } from "../../src/trace";

export function describeRecordedCorpus(dir: string): void {
  const core = new WasmCore();
  const files = readdirSync(dir).filter((f) => f.endsWith(".trace"));
  describe(`conformance/${basename(dir)}`, () => {
    it("has recordings", () => expect(files.length).toBeGreaterThan(0));
    for (const f of files) {
      it(`${f} replays byte for byte`, () => {
        const trace = readFileSync(join(dir, f), "utf8");
        const want = readFileSync(join(dir, f.replace(/\.trace$/, ".out")), "utf8");
        const got = replayTrace(trace, { core });
        const g = got.split("\n");
        const w = want.split("\n");
        for (let i = 0; i < w.length; i++) if (g[i] !== w[i]) expect(`${i + 1}: ${g[i]}`).toBe(`${i + 1}: ${w[i]}`);
        expect(got).toBe(want);
      });
    }
  });
}
