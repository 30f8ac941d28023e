/**
 * `vfio-sim migrate` with mlx5-like VFs: device DMA logging chosen by QEMU's rule (START
 * with QEMU's ranges, merged by the driver under its range limit, REPORT per harvest,
 * STOP at the end), device state sent in pre-copy (PRECOPY_INFO) and in stop-and-copy
 * (STOP_COPY) and counted in the downtime, and the mapping-after-start adversary (Cloud
 * Hypervisor #8567): naive loses the plugged region's pages, the restart fixes it.
 */
import { runMigrateCommand } from "../../src/cli/commands/migrate";
import type { CliIo } from "../../src/cli/command";
import {
  GuestLayout,
  HIGH_RAM_BASE,
  MLX5_DEVICE_STATE,
  MLX5_MIGRATE_MAX_RANGES,
  ModelMlx5,
  PAGE_SIZE,
  defaultScenario,
  device,
  renderVerdict,
  runMigration,
  scenarioDirtyTrackingChoice,
  validateScenario,
  type MigrationResult,
  type Scenario,
} from "../../src/migrate";
import { qemuDmaLoggingRanges } from "../../src/migrate/dma-logging-ranges";
import { vfioCombineIovaRanges } from "../../src/vfio";

function capture(): CliIo & { stdout: string; stderr: string } {
  const io = { stdout: "", stderr: "", isTTY: false, out: (s: string) => void (io.stdout += s), err: (s: string) => void (io.stderr += s) };
  return io;
}

const W = { rate: 100e6, workingSet: 256 * 2 ** 20, hotSet: 32 * 2 ** 20, hotFraction: 0.8, burst: 16384 };

/** A 6 GiB guest (both RAM regions), a 1 GB/s link, two mlx5-like VFs. */
function small(over: Partial<Scenario> = {}): Scenario {
  return {
    ...defaultScenario("device-logging"),
    guestBytes: 6 * 2 ** 30,
    bandwidth: 1e9,
    downtimeLimit: 0.05,
    devices: [device("mlx5", "vf0", W), device("mlx5", "vf1", W)],
    ...over,
  };
}

function run(s: Scenario): MigrationResult {
  expect(validateScenario(s)).toEqual([]);
  const r = runMigration(s);
  if ("failure" in r) throw new Error(r.failure.message);
  return r.result;
}

describe("device-logging", () => {
  test("converges with device state, 0 lost; device state is on the wire every round and in the downtime", () => {
    const s = small();
    const r = run(s);
    expect(r.converged).toBe(true);
    expect(r.check).toEqual({ ok: true, lostPages: 0, examples: [] });
    for (const round of r.rounds) expect(round.deviceStateBytes).toBeGreaterThan(0);
    // Round 1 reads PRECOPY_INFO's initial bytes: the full state of each device at least.
    expect(r.rounds[0].deviceStateBytes).toBeGreaterThanOrEqual(2 * MLX5_DEVICE_STATE.initialBytes);
    for (const round of r.rounds) expect(round.transferSeconds).toBeCloseTo((round.sentPages * PAGE_SIZE + round.deviceStateBytes!) / s.bandwidth, 12);
    const fin = r.rounds[r.rounds.length - 1];
    expect(fin.phase).toBe("stop-and-copy");
    const ds = r.deviceState!;
    expect(ds.downtimeBytes).toBe(fin.deviceStateBytes);
    expect(ds.downtimeMemoryBytes).toBe(fin.sentPages * PAGE_SIZE);
    expect(r.totals.downtimeSeconds).toBeCloseTo((ds.downtimeMemoryBytes + ds.downtimeBytes) / s.bandwidth, 12);
    expect(ds.precopyBytes).toBe(r.rounds.slice(0, -1).reduce((a, x) => a + x.deviceStateBytes!, 0));
    expect(r.totals.sentBytes).toBe(r.totals.sentPages * PAGE_SIZE + ds.precopyBytes + ds.downtimeBytes);
    expect(ds.dominates).toBe(ds.downtimeBytes > ds.downtimeMemoryBytes ? "device state" : "memory");
    // MIG_DATA_SIZE at switch-over: the full states, which grew while the devices ran.
    expect(ds.dataSizeAtStop).toBeGreaterThan(2 * MLX5_DEVICE_STATE.initialBytes);
    const text = renderVerdict(r);
    expect(text).toMatch(/Downtime = \(.* of memory \+ .* of device state\) \/ .*: (memory|device state) dominates the downtime/);
    expect(text).toMatch(/Dirty tracking: device DMA logging \(QEMU's choice rule: every device supports it\)/);
  });

  test("a device that writes no guest memory: device state dominates the downtime", () => {
    const quiet = { ...W, rate: 0 };
    const r = run(small({ devices: [device("mlx5", "vf0", quiet)] }));
    expect(r.check.ok).toBe(true);
    const ds = r.deviceState!;
    expect(ds.downtimeMemoryBytes).toBe(0);
    expect(ds.downtimeBytes).toBeGreaterThan(0);
    expect(ds.dominates).toBe("device state");
    expect(r.totals.downtimeSeconds).toBeGreaterThan(0);
  });

  test("START takes QEMU's ranges; the device's range limit makes the driver merge them (vfio_combine_iova_ranges)", () => {
    const s = small();
    const layout = new GuestLayout(s.guestBytes, s.mappingPageSize);
    const b = new ModelMlx5(s.devices[0], layout, s);
    try {
      expect(b.setup()).toBe(0);
      expect(b.harvester.start()).toBe(0);
      const qemu = qemuDmaLoggingRanges(layout.regions.map((x) => ({ iova: BigInt(x.iova), end: BigInt(x.iova + x.bytes - 1) })));
      expect(qemu).toHaveLength(2);
      const merged = vfioCombineIovaRanges(qemu.map((x) => ({ start: x.iova, last: x.iova + x.length - 1n })), MLX5_MIGRATE_MAX_RANGES);
      expect(merged).toEqual([{ start: 0n, last: BigInt(s.guestBytes) + 2n ** 30n - 1n }]);
      // mlx5 programs `last - start` bytes: the armed end is the merged range's last byte.
      expect(b.drv.armed).toEqual(merged.map((m) => ({ start: m.start, end: m.last })));
      expect(b.trackingNote).toMatch(/QEMU's 2 ranges .* the device tracks at most 1 range, so the driver merged them/);
    } finally {
      b.dispose();
    }
    const r = run(s);
    expect(r.backends.map((x) => x.tracking)).toEqual([expect.stringMatching(/merged them/), expect.stringMatching(/merged them/)]);
    expect(r.backends.every((x) => x.harvestCall === "VFIO_DEVICE_FEATURE DMA_LOGGING_REPORT")).toBe(true);
  });

  test("choice rule: a mix with a device without DMA logging falls back to the container's IOMMU tracking", () => {
    expect(scenarioDirtyTrackingChoice(small())).toBe("device");
    const mixed = small({ devices: [device("mlx5", "vf0", W), device("iommufd", "nic0", W)] });
    expect(scenarioDirtyTrackingChoice(mixed)).toBe("container");
    const layout = new GuestLayout(mixed.guestBytes, mixed.mappingPageSize);
    const b = new ModelMlx5(mixed.devices[0], layout, mixed);
    try {
      expect(b.setup()).toBe(0);
      expect(b.harvester.start()).toBe(0);
      expect(b.drv.logActive).toBe(false); // no DMA_LOGGING_START
      expect(b.harvester.call).toBe("IOMMU_HWPT_GET_DIRTY_BITMAP");
    } finally {
      b.dispose();
    }
    const r = run(mixed);
    expect(r.check).toEqual({ ok: true, lostPages: 0, examples: [] });
    expect(r.backends[0].tracking).toMatch(/^container IOMMU dirty tracking/);
    expect(r.deviceState!.precopyBytes).toBeGreaterThan(0); // the device state still migrates
    expect(renderVerdict(r)).toMatch(/Dirty tracking: the container's IOMMU dirty tracking \(QEMU's choice rule: not every device supports DMA logging\)/);
  });
});

describe("mapping-after-start (Cloud Hypervisor #8567)", () => {
  const adv = (naive: boolean, round = 1): Scenario => small({ devices: [device("mlx5", "vf0", W)], adversary: { name: "mapping-after-start", naive, round } });

  test.each([1, 2])("naive (plugged in round %i): the tracker never records the new mapping; the ledger names pages there", (round) => {
    const r = run(adv(true, round));
    expect(r.check.ok).toBe(false);
    expect(r.check.lostPages).toBeGreaterThan(0);
    expect(r.check.examples.length).toBeGreaterThan(0);
    for (const e of r.check.examples) expect(e.gpa).toBeGreaterThanOrEqual(HIGH_RAM_BASE);
    expect(r.backends[0].tracking).toMatch(/QEMU's 1 range \[0x0-0xbfffffff\].*DMA writes? outside every armed range \(the tracker answered "untracked"\)/);
  });

  test.each([1, 2])("fixed (plugged in round %i): REPORT, STOP, START with recomputed ranges; nothing lost", (round) => {
    const r = run(adv(false, round));
    expect(r.check).toEqual({ ok: true, lostPages: 0, examples: [] });
    expect(r.backends[0].tracking).toMatch(/restarted after a new mapping \(REPORT, STOP, then START #2\) START with QEMU's 2 ranges/);
    expect(r.backends[0].tracking).not.toMatch(/untracked/);
  });

  test("the restart REPORTs what the old ranges logged before its STOP (a STOP forgets the tracker's pages)", () => {
    const s = adv(false);
    const layout = new GuestLayout(s.guestBytes, s.mappingPageSize);
    const b = new ModelMlx5(s.devices[0], layout, s);
    try {
      expect(b.setup()).toBe(0);
      expect(b.harvester.start()).toBe(0);
      expect(b.deviceState.startPrecopy()).toBe(0);
      expect(b.writer.write(10, 2)).toBe(0); // below-4g: logged under the first START
      const got: number[] = [];
      const sink = (ramPage: number, bits: Uint8Array, nbits: number): void => {
        for (let i = 0; i < nbits; i++) if ((bits[i >> 3] >> (i & 7)) & 1) got.push(ramPage + i);
      };
      expect(b.addMapping(1, true, sink)).toBe(0);
      expect(got).toEqual([10, 11]);
      expect(b.starts).toBe(2);
      const high = layout.regions[1].ramPage + 5;
      expect(b.writer.write(high, 1)).toBe(0); // the new mapping is armed now
      expect(b.untrackedWrites).toBe(0);
      expect(b.harvester.harvest()).toBe(0);
      const after: number[] = [];
      b.harvester.collect((ramPage, bits, nbits) => {
        for (let i = 0; i < nbits; i++) if ((bits[i >> 3] >> (i & 7)) & 1) after.push(ramPage + i);
      });
      expect(after).toEqual([high]);
    } finally {
      b.dispose();
    }
  });

  test("validation: needs RAM above 4 GiB and an mlx5 device", () => {
    expect(validateScenario({ ...adv(false), guestBytes: 2 * 2 ** 30 })).toContain("mapping-after-start: the guest needs RAM above 4G (more than 3G) to plug");
    expect(validateScenario({ ...adv(false), devices: [device("iommufd", "nic0", W)] })).toContain(
      "mapping-after-start: at least one mlx5 device (device DMA logging) is needed",
    );
  });
});

describe("the CLI", () => {
  const SMALL = ["--guest", "6G", "--rate", "100MB/s", "--working-set", "256M", "--hot-set", "32M", "--downtime", "50ms", "--bandwidth", "1GB/s"];

  test("device-logging: exit 0, device state in the table, the downtime and the JSON", () => {
    const io = capture();
    expect(runMigrateCommand(["--scenario", "device-logging", ...SMALL], io)).toBe(0);
    expect(io.stdout).toMatch(/device state\n/);
    expect(io.stdout).toMatch(/dominates the downtime/);
    expect(io.stdout).toMatch(/No-lost-page check: OK/);
    const j = capture();
    expect(runMigrateCommand(["--scenario", "device-logging", "--json", ...SMALL], j)).toBe(0);
    const doc = JSON.parse(j.stdout);
    expect(doc.deviceState.downtimeBytes).toBe(doc.rounds[doc.rounds.length - 1].deviceStateBytes);
    expect(doc.rounds.every((x: { deviceStateBytes: number }) => x.deviceStateBytes > 0)).toBe(true);
  });

  test("mapping-after-start: naive exits 1 with the lost pages named; fixed exits 0", () => {
    const bad = capture();
    expect(runMigrateCommand(["--scenario", "mapping-after-start", "--naive", ...SMALL], bad)).toBe(1);
    expect(bad.stderr).toMatch(/LOST DIRTY PAGES: \d+ pages/);
    expect(bad.stdout).toMatch(/No-lost-page check FAILED: \d+ written pages .* \(e\.g\. GPA 0x1[0-9a-f]{8}/);
    const good = capture();
    expect(runMigrateCommand(["--scenario", "mapping-after-start", ...SMALL], good)).toBe(0);
    expect(good.stdout).toMatch(/No-lost-page check: OK/);
  });
});
