/**
 * Acceptance: across the whole corpus, every failing ioctl leaves the model's state exactly
 * as it was, and the invariants hold after every call. The only exceptions are the ones
 * Linux itself has: a bitmap copy-out that faults (EFAULT) after earlier mappings were
 * already reported (GET_BITMAP) or removed (UNMAP with GET_DIRTY_BITMAP); for those, the
 * mapping set and accounting must still be unchanged for GET_BITMAP.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { WasmCore } from "../../src/wasm/core";
import { TraceRunner, parseTrace } from "../../src/trace";
import { Errno } from "../../src/uapi/errno";
import { VFIO_IOMMU_DIRTY_PAGES, VFIO_IOMMU_UNMAP_DMA } from "../../src/uapi/vfio";
import { invariants, snapshot } from "./state";

const DIRS = [join(__dirname, "..", "conformance", "linux-6.1"), join(__dirname, "..", "conformance", "new")];
const core = new WasmCore();

describe("state after failing calls (corpus)", () => {
  for (const [DIR, f] of DIRS.flatMap((d) => readdirSync(d).filter((x) => x.endsWith(".trace")).map((x) => [d, x] as const))) {
    it(`${f}: failed ioctls change nothing; invariants hold`, () => {
      const runner = new TraceRunner({ core });
      runner.start();
      const proc = runner.proc;
      const realIoctl = proc.ioctl.bind(proc);
      let failures = 0;
      let checked = 0;
      const problems: string[] = [];
      proc.ioctl = (fd, cmd, arg) => {
        const before = snapshot(runner.iommu, proc);
        const beforeNoBitmaps = snapshot(runner.iommu, proc, false);
        const r = realIoctl(fd, cmd, arg);
        if (r.ret < 0) {
          failures++;
          const partialByLinux = r.errno === Errno.EFAULT && (cmd === VFIO_IOMMU_DIRTY_PAGES || cmd === VFIO_IOMMU_UNMAP_DMA);
          if (!partialByLinux) expect(snapshot(runner.iommu, proc)).toEqual(before);
          else if (cmd === VFIO_IOMMU_DIRTY_PAGES) expect(snapshot(runner.iommu, proc, false)).toEqual(beforeNoBitmaps);
          checked++;
        }
        if ((runner.iommu?.dmaList.length ?? 0) < 2048) {
          const bad = invariants(runner.iommu, proc);
          if (bad.length) problems.push(`cmd ${cmd.toString(16)}: ${bad.join("; ")}`);
        }
        return r;
      };
      for (const line of parseTrace(readFileSync(join(DIR, f), "utf8"))) {
        runner.step(line);
        const bad = invariants(runner.iommu, proc);
        if (bad.length) problems.push(`line ${line.lineno}: ${bad.join("; ")}`);
      }
      expect(problems).toEqual([]);
      expect(checked).toBe(failures);
      if (!f.startsWith("set-iommu")) expect(failures).toBeGreaterThan(0);
      proc.exit();
    });
  }
});
