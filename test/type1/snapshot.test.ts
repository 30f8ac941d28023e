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
import { VFIO_GROUP_SET_CONTAINER, VFIO_IOMMU_DIRTY_PAGES, VFIO_IOMMU_UNMAP_DMA } from "../../src/uapi/vfio";
import { Type1Handle, createVfioProcess, type Type1Profile } from "../../src/type1";
import { vtdPlatform } from "../../src/iommu";
import { invariants, snapshot } from "./state";

const CONFORMANCE = join(__dirname, "..", "conformance");
/** Each corpus directory with the profile of the kernel that recorded it. */
const DIRS: ReadonlyArray<readonly [string, Type1Profile]> = [
  [join(CONFORMANCE, "linux-6.1"), "linux-6.1"],
  [join(CONFORMANCE, "new"), "linux-6.1"],
  [join(CONFORMANCE, "linux-6.12"), "linux-6.12"],
];
const core = new WasmCore();

describe("state after failing calls (corpus)", () => {
  for (const [DIR, profile, f] of DIRS.flatMap(([d, p]) => readdirSync(d).filter((x) => x.endsWith(".trace")).map((x) => [d, p, x] as const))) {
    it(`${profile} ${f}: failed ioctls change nothing; invariants hold`, () => {
      const runner = new TraceRunner({ core, type1: { profile } });
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

describe("state after a failing GROUP_SET_CONTAINER", () => {
  // The replay into a new IOMMU domain pins what an emulated-only container never pinned; a
  // failure part way must leave no pin, mapping or charge behind (vfio_iommu_replay's unwind).
  for (const profile of ["linux-6.1", "linux-6.12"] as const) {
    it(`${profile}: the replay's unwind restores the snapshot`, () => {
      const plat = vtdPlatform();
      plat.groups.push({ id: 7, devices: [{ name: "mdev0", resv: [] }], emulated: true });
      const proc = createVfioProcess(plat, { profile });
      const h = Type1Handle.open(proc, { groupId: 7 });
      if (!h.ok) throw new Error(h.errnoName);
      const guest = BigInt(proc.mmap(undefined, 8 << 20).ret);
      proc.fill(guest, 1 << 20, 1);
      // Written, never written (read-only: zero pages on 6.1, unshared on 6.12), then past the VMA.
      expect(h.value.mapDma({ iova: 0n, vaddr: guest, size: 1n << 20n }).ok).toBe(true);
      expect(h.value.mapDma({ iova: 2n << 20n, vaddr: guest + (2n << 20n), size: 1n << 20n, write: false }).ok).toBe(true);
      expect(h.value.mapDma({ iova: 4n << 20n, vaddr: guest + (7n << 20n), size: 2n << 20n }).ok).toBe(true);
      const before = snapshot(h.value.iommu, proc);
      const g = proc.open("/dev/vfio/0").ret;
      const buf = BigInt(proc.mmap(undefined, 4096).ret);
      const b = new Uint8Array(4);
      new DataView(b.buffer).setInt32(0, h.value.fd, true);
      proc.write(buf, b);
      expect(proc.ioctl(g, VFIO_GROUP_SET_CONTAINER, buf).errno).toBe(Errno.EFAULT);
      expect(snapshot(h.value.iommu, proc)).toEqual(before);
      expect(invariants(h.value.iommu, proc)).toEqual([]);
      expect(proc.mm!.underflowWarnings).toBe(0);
    });
  }
});
