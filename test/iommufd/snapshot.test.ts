/**
 * Acceptance: across the iommufd/cdev corpus, every failing ioctl leaves the model's state
 * (objects, areas, reserved and allowed ranges, pins, charges, account mode) exactly as it
 * was, and the invariants hold after every call. The exceptions are Linux's own partial
 * effects, listed here:
 * - IOAS_UNMAP stops with ENOENT at an area crossing the range's end after removing the
 *   areas before it (iopt_unmap_iova_range);
 * - IOAS_MAP, IOAS_COPY, IOAS_UNMAP, MOCK_DOMAIN_REPLACE and OPTION(SET) whose answer
 *   cannot be written back (EFAULT) keep what they did (all recorded on 6.12);
 * - GET_DIRTY_BITMAP and TEST_OP_DIRTY change dirty bits, which this snapshot leaves out.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { WasmCore } from "../../src/wasm/core";
import { IommufdCtx } from "../../src/iommufd";
import * as U from "../../src/iommufd/uapi";
import { TraceRunner, parseTrace } from "../../src/trace";
import { Errno } from "../../src/uapi/errno";
import { invariants, snapshot } from "./state";

const DIR = join(__dirname, "..", "conformance", "linux-6.12-iommufd");
const core = new WasmCore();
const files = readdirSync(DIR).filter((x) => x.endsWith(".trace"));

const PARTIAL_EFAULT = new Set([U.IOMMU_IOAS_MAP, U.IOMMU_IOAS_COPY, U.IOMMU_IOAS_UNMAP, U.IOMMU_TEST_CMD, U.IOMMU_OPTION]);

describe("iommufd state after failing calls (corpus)", () => {
  let failuresInCorpus = 0;
  for (const f of files) {
    it(`${f}: failed ioctls change nothing; invariants hold`, () => {
      const runner = new TraceRunner({ core });
      runner.start();
      const proc = runner.proc;
      const ctx = (): IommufdCtx | null => {
        const w = runner.iommufdWorld;
        const file = w ? proc.fdget(w.iommufd) : null;
        return file instanceof IommufdCtx ? file : null;
      };
      const realIoctl = proc.ioctl.bind(proc);
      let failures = 0;
      const problems: string[] = [];
      proc.ioctl = (fd, cmd, arg) => {
        const before = snapshot(ctx(), proc);
        const opBytes = cmd === U.IOMMU_TEST_CMD ? proc.read(BigInt(arg ?? 0) + 4n, 4) : null;
        const op = opBytes ? new DataView(opBytes.buffer, opBytes.byteOffset, 4).getUint32(0, true) : -1;
        const r = realIoctl(fd, cmd, arg);
        if (r.ret < 0) {
          failures++;
          // MOCK_DOMAIN unwinds everything when its answer cannot be written (F14).
          const mockDomain = op === U.IOMMU_TEST_OP_MOCK_DOMAIN || op === U.IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS;
          const partial = (r.errno === Errno.ENOENT && cmd === U.IOMMU_IOAS_UNMAP) || (r.errno === Errno.EFAULT && PARTIAL_EFAULT.has(cmd) && !mockDomain);
          if (!partial) expect(snapshot(ctx(), proc)).toEqual(before);
        }
        const bad = invariants(ctx(), proc);
        if (bad.length) problems.push(`cmd ${cmd.toString(16)}: ${bad.join("; ")}`);
        return r;
      };
      for (const line of parseTrace(readFileSync(join(DIR, f), "utf8"))) runner.step(line);
      expect(problems).toEqual([]);
      failuresInCorpus += failures;
      proc.exit();
    });
  }
  it("checked a good number of failing calls", () => expect(failuresInCorpus).toBeGreaterThan(1000));
});
