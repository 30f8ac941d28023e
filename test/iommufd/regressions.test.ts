/**
 * Regressions of issue 11's iommufd findings, each guarded by a trace recorded on the Linux
 * 6.12 test kernel (test/conformance/linux-6.12-iommufd/regress-*.trace): the model must
 * print what the kernel printed, and a few lines are spelled out so a failure says what broke.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { WasmCore } from "../../src/wasm/core";
import { replayTrace } from "../../src/trace";

const DIR = join(__dirname, "..", "conformance", "linux-6.12-iommufd");
const core = new WasmCore();

function replay(name: string): { got: string[]; want: string[] } {
  const got = replayTrace(readFileSync(join(DIR, `${name}.trace`), "utf8"), { core }).split("\n");
  const want = readFileSync(join(DIR, `${name}.out`), "utf8").split("\n");
  return { got, want };
}

const line = (out: string[], n: number): string => out.find((l) => l.startsWith(`${n} `)) ?? "";

describe("iommufd regressions (issue 11)", () => {
  test("F9: a 2 TiB IOAS_MAP into an IOAS with a mock domain answers at once (ENOSPC / EINVAL), writing no PTE", () => {
    const { got, want } = replay("regress-f09-huge-map-answers-at-once");
    expect(line(got, 7)).toBe("7 ioas_map = -1 ENOSPC");
    expect(line(got, 8)).toBe("8 ioas_map = -1 EINVAL");
    expect(line(got, 15)).toBe("15 mock_domain = -1 EADDRINUSE");
    expect(got).toEqual(want);
  });

  test("F10: a map below the mock aperture is EINVAL and allocated IOVAs start at the aperture", () => {
    const { got, want } = replay("regress-f10-map-below-mock-aperture");
    expect(line(got, 7)).toBe("7 ioas_map = -1 EINVAL");
    expect(line(got, 9)).toBe("9 ioas_map = 0 OK iova=0x1000000");
    expect(got).toEqual(want);
  });

  test("F11: a user_va beyond the process fails with EFAULT at pin time instead of reaching a PTE", () => {
    const { got, want } = replay("regress-f11-user-va-beyond-process");
    expect(line(got, 7)).toBe("7 ioas_map = -1 EFAULT");
    expect(got).toEqual(want);
  });

  test("F12: an unaligned bitmap whose last page is unmapped still gets the bits of the pages that could be pinned", () => {
    const { got, want } = replay("regress-f12-unaligned-bitmap-partly-unmapped");
    expect(line(got, 13)).toBe("13 get_dirty = 0 OK bitmap=ffffffffffffffffffffffffffffffff");
    expect(got).toEqual(want);
  });

  test("F14: MOCK_DOMAIN whose answer cannot be written leaves no selftest object, device or HWPT behind", () => {
    const { got, want } = replay("regress-f14-mock-domain-answer-unwritable");
    expect(line(got, 7)).toBe("7 mock_domain = -1 EFAULT");
    expect(line(got, 10)).toBe("10 destroy = -1 ENOENT");
    expect(line(got, 13)).toBe("13 mock_domain = 0 OK stdev=2 hwpt=4 idev=3");
    expect(got).toEqual(want);
  });
});
