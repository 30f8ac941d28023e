/**
 * Regression tests for issue 11's reliability findings (F1, F3, F4, F8, F13), each named
 * after what it guards. F2 is in high-memory.test.ts, F16 in argument-checks.test.ts.
 */
import { WasmCore } from "../../src/wasm/core";
import * as U from "../../src/iommufd/uapi";
import { Errno } from "../../src/uapi/errno";
import { IommufdWorld } from "./helpers";

const START = U.MOCK_APERTURE_START;

/** An IOAS with 2 MiB mapped at the mock aperture and a dirty-tracking HWPT over it, tracking on. */
function iommufdTracking(): { w: IommufdWorld; hwpt: number; ioas: number } {
  const w = new IommufdWorld(new WasmCore());
  const ioas = w.ioasAlloc();
  const idev = w.mockDomain(ioas);
  expect(w.map(ioas, 0n, 2n << 20n, START)).toBe(0);
  const hwpt = w.hwptAlloc(idev, ioas);
  expect(hwpt).toBeGreaterThan(0);
  expect(w.track(hwpt, true)).toBe(0);
  return { w, hwpt, ioas };
}

/** Marks 4 KiB pages dirty through IOMMU_TEST_OP_DIRTY. */
function writePages(w: IommufdWorld, hwpt: number, pages: number[]): void {
  const bits = new Uint8Array(64);
  for (const p of pages) bits[p >> 3] |= 1 << (p & 7);
  const at = w.bitmaps + 0x30000n;
  w.proc.write(at, bits);
  expect(w.setDirty(hwpt, START, 512n * 4096n, 4096n, at)).toBeGreaterThan(0);
}

function bitsAt(w: IommufdWorld, at: bigint, nbits: number): number[] {
  const b = w.proc.read(at, Math.ceil(nbits / 8))!;
  const out: number[] = [];
  for (let i = 0; i < nbits; i++) if (b[i >> 3] & (1 << (i & 7))) out.push(i);
  return out;
}

describe("F1: iommufd harvest buffers", () => {
  test.each([1, 2, 3])("a failed harvest-buffer allocation (%i of 3) leaves later GET_DIRTY_BITMAP calls working", (n) => {
    const { w, hwpt } = iommufdTracking();
    writePages(w, hwpt, [1, 7, 300]);
    w.core.faults.failNth(n);
    expect(w.get(hwpt, START, 512n * 4096n, 4096n, w.bitmaps)).toBe(-Errno.ENOMEM);
    expect(w.core.faults.hits).toBe(1);
    w.core.faults.failNth(0);
    expect(w.get(hwpt, START, 512n * 4096n, 4096n, w.bitmaps)).toBe(0);
    expect(bitsAt(w, w.bitmaps, 512)).toEqual([1, 7, 300]);
  });
});

describe("F4: iommufd pins the bitmap for write before the walk", () => {
  test("a read-only bitmap window clears no dirty bit", () => {
    const { w, hwpt } = iommufdTracking();
    writePages(w, hwpt, [2, 3, 511]);
    const ro = w.bitmaps + 0x10000n;
    expect(w.proc.mprotect(ro, 0x1000, 1).errno).toBe(0); // PROT_READ
    expect(w.get(hwpt, START, 512n * 4096n, 4096n, ro)).toBe(0);
    expect(w.get(hwpt, START, 512n * 4096n, 4096n, w.bitmaps)).toBe(0);
    expect(bitsAt(w, w.bitmaps, 512)).toEqual([2, 3, 511]);
  });

  test("a bitmap page that cannot be faulted in clears no dirty bit", () => {
    const { w, hwpt } = iommufdTracking();
    expect(w.get(hwpt, START, 512n * 4096n, 4096n, w.bitmaps)).toBe(0); // harvest buffers exist now
    writePages(w, hwpt, [0, 100]);
    const fresh = w.bitmaps + 0x20000n; // never written: its frame is allocated by the pin
    w.core.faults.failNth(1);
    expect(w.get(hwpt, START, 512n * 4096n, 4096n, fresh)).toBe(0);
    expect(w.core.faults.hits).toBe(1);
    w.core.faults.failNth(0);
    expect(w.get(hwpt, START, 512n * 4096n, 4096n, fresh)).toBe(0);
    expect(bitsAt(w, fresh, 512)).toEqual([0, 100]);
  });
});
