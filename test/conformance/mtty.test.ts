/**
 * The mtty device-fd acceptance test (issue 12): every trace recorded on the Linux 6.12 test kernel
 * (test/oracle/record-6.12.sh; the mtty mdev, `world mtty`) replays to exactly the bytes the kernel printed. Files are
 * discovered, so new recordings are picked up.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { WasmCore } from "../../src/wasm/core";
import { replayTrace } from "../../src/trace";

const DIR = join(__dirname, "linux-6.12-mtty");
const core = new WasmCore();
const files = readdirSync(DIR).filter((f) => f.endsWith(".trace"));

describe("conformance/linux-6.12-mtty", () => {
  it("has recordings", () => expect(files.length).toBeGreaterThan(0));
  for (const f of files) {
    it(`${f} replays byte for byte`, () => {
      const trace = readFileSync(join(DIR, f), "utf8");
      const want = readFileSync(join(DIR, f.replace(/\.trace$/, ".out")), "utf8");
      const got = replayTrace(trace, { core });
      const g = got.split("\n");
      const w = want.split("\n");
      for (let i = 0; i < w.length; i++) if (g[i] !== w[i]) expect(`${i + 1}: ${g[i]}`).toBe(`${i + 1}: ${w[i]}`);
      expect(got).toBe(want);
    });
  }
});
