/**
 * Adversarial scenarios (VMM behaviours real VMMs got wrong): on the naive path the
 * no-lost-page ledger must catch the loss (or the kernel refuses), on the fixed path
 * nothing is lost (or a migration blocker refuses up front).
 */
import { runMigrateCommand } from "../../src/cli/commands/migrate";
import type { CliIo } from "../../src/cli/command";
import { GuestLayout, LOW_RAM_MAX, ModelType1, defaultScenario, device, runMigration, validateScenario, type MigrationResult, type Scenario, type AdversaryName } from "../../src/migrate";

function capture(): CliIo & { stdout: string; stderr: string } {
  const io = { stdout: "", stderr: "", isTTY: false, out: (s: string) => void (io.stdout += s), err: (s: string) => void (io.stderr += s) };
  return io;
}

/** A 6 GiB guest (both RAM regions) with an iommufd NIC and an emulated vGPU. */
function small(name: AdversaryName, naive: boolean): Scenario {
  const w = { rate: 100e6, workingSet: 1 * 2 ** 30, hotSet: 64 * 2 ** 20, hotFraction: 0.8, burst: 16384 };
  return {
    ...defaultScenario(name),
    guestBytes: 6 * 2 ** 30,
    bandwidth: 1e9,
    downtimeLimit: 0.05,
    devices: [device("iommufd", "nic0", w), device("emulated", "vgpu0", { ...w, workingSet: 512 * 2 ** 20 }, 1 << 20)],
    adversary: { name, naive, round: 2 },
  };
}

function run(s: Scenario): MigrationResult {
  expect(validateScenario(s)).toEqual([]);
  const r = runMigration(s);
  if ("failure" in r) throw new Error(r.failure.message);
  return r.result;
}

describe.each(["unmap-no-query", "harvest-fails"] as const)("%s", (name) => {
  test("naive: the ledger names lost pages, all in the below-4g region the adversary struck", () => {
    const r = run(small(name, true));
    expect(r.check.ok).toBe(false);
    expect(r.check.lostPages).toBeGreaterThan(0);
    expect(r.check.examples.length).toBeGreaterThan(0);
    for (const e of r.check.examples) expect(e.gpa).toBeLessThan(LOW_RAM_MAX);
  });

  test("fixed: same workload, nothing lost", () => {
    const r = run(small(name, false));
    expect(r.check).toEqual({ ok: true, lostPages: 0, examples: [] });
  });
});

describe("huge-guest", () => {
  test("naive: DIRTY_PAGES START fails with EINVAL (vfio_dma_bitmap_alloc: more than INT_MAX pages)", () => {
    const s = { ...defaultScenario("huge-guest"), adversary: { name: "huge-guest" as const, naive: true, round: 2 } };
    expect(validateScenario(s)).toEqual([]);
    const r = runMigration(s);
    expect("failure" in r && r.failure).toMatchObject({ device: "vgpu0", call: "start dirty tracking", errno: 22 });
    expect("failure" in r && r.failure.blocker).toBeFalsy();
  });

  test("fixed: GET_INFO's migration capability shows the bitmap cannot fit, a blocker refuses before tracking starts", () => {
    const r = runMigration(defaultScenario("huge-guest"));
    expect("failure" in r && r.failure).toMatchObject({ device: "vgpu0", errno: 0, blocker: true });
    expect("failure" in r && r.failure.message).toMatch(/above-4g .* needs a 288 MiB dirty bitmap; the container's max_dirty_bitmap_size is 256 MiB/);
  });

  test("the blocker is the kernel's limit: a region of 2^31 - 1 pages passes, 2^31 pages (8 TiB) is blocked", () => {
    // DIRTY_BITMAP_PAGES_MAX = INT_MAX: an 8 TiB mapping's bitmap would be exactly 256 MiB,
    // within max_dirty_bitmap_size, and START still fails; the fixed VMM checks both.
    const check = (guestBytes: number): string | null => {
      const s = { ...defaultScenario("huge-guest"), guestBytes };
      const layout = new GuestLayout(guestBytes, 4096);
      const b = new ModelType1(s.devices[0], layout, s, []);
      try {
        expect(b.setup()).toBe(0);
        return b.migrationBlocker();
      } finally {
        b.dispose();
      }
    };
    expect(check(LOW_RAM_MAX + 8 * 2 ** 40 - 4096)).toBeNull();
    expect(check(LOW_RAM_MAX + 8 * 2 ** 40)).toMatch(/2147483648 pages of 4 KiB/);
  });
});

describe("the CLI", () => {
  const SMALL = ["--guest", "6G", "--rate", "100MB/s", "--working-set", "512M", "--hot-set", "32M", "--downtime", "50ms", "--bandwidth", "1GB/s"];

  test("naive: exit 1 with the lost pages named; fixed: exit 0", () => {
    const bad = capture();
    expect(runMigrateCommand(["--scenario", "unmap-no-query", "--naive", ...SMALL], bad)).toBe(1);
    expect(bad.stderr).toMatch(/LOST DIRTY PAGES: \d+ pages/);
    expect(bad.stdout).toMatch(/No-lost-page check FAILED: \d+ written pages .* \(e\.g\. GPA 0x[0-9a-f]+/);
    const good = capture();
    expect(runMigrateCommand(["--scenario", "unmap-no-query", ...SMALL], good)).toBe(0);
    expect(good.stdout).toMatch(/No-lost-page check: OK/);
  });

  test("huge-guest: the fixed VMM's blocker exits 0 with its reason; the naive one exits 1", () => {
    const good = capture();
    expect(runMigrateCommand(["--scenario", "huge-guest"], good)).toBe(0);
    expect(good.stdout).toMatch(/migration blocked: .*max_dirty_bitmap_size/);
    const bad = capture();
    expect(runMigrateCommand(["--scenario", "huge-guest", "--naive"], bad)).toBe(1);
    expect(bad.stderr).toMatch(/start dirty tracking failed with EINVAL/);
  });

  test("--naive needs an adversarial scenario; adversaries need the model's backends", () => {
    const a = capture();
    expect(runMigrateCommand(["--naive"], a)).toBe(2);
    expect(a.stderr).toMatch(/--naive needs an adversarial scenario \(unmap-no-query, harvest-fails, huge-guest, mapping-after-start\)/);
    const b = capture();
    expect(runMigrateCommand(["--scenario", "harvest-fails", "--stand-ins"], b)).toBe(2);
  });
});
