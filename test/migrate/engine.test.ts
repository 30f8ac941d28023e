import { BACKENDS, STAND_IN_BACKENDS, defaultScenario, device, runMigration, validateScenario, type MigrationResult, type RoundResult, type Scenario } from "../../src/migrate";
import { REFERENCE_BACKENDS, droppingBits } from "./reference";
import { ModelIommufd, type DeviceSpec, type GuestLayout } from "../../src/migrate";
import { iommufdUapi } from "../../src/iommufd";

function run(s: Scenario, backends = BACKENDS): MigrationResult {
  const r = runMigration(s, { backends });
  if ("failure" in r) throw new Error(r.failure.message);
  return r.result;
}

/** Everything a round reports except measured wall time. */
const simulated = (rounds: readonly RoundResult[]) =>
  rounds.map((r) => ({ ...r, harvestMs: 0, devices: r.devices.map((d) => ({ ...d, harvestMs: 0 })) }));

/** A small guest where the JS reference is cheap: every kind, leaves of 4K and 2M. */
function small(pageSize: number, seed: number): Scenario {
  const w = { rate: 40e6, workingSet: 64 * 2 ** 20, hotSet: 8 * 2 ** 20, hotFraction: 0.8, burst: 16384 };
  return {
    ...defaultScenario(),
    guestBytes: 3 * 2 ** 30 + 512 * 2 ** 20, // both RAM regions
    mappingPageSize: pageSize,
    bandwidth: 1e9,
    downtimeLimit: 0.02,
    maxRounds: 6,
    seed,
    devices: [device("iommufd", "a", w), device("hw-type1", "b", w), device("emulated", "c", w, 256 * 1024), device("type1", "d", w)],
  };
}

describe("the round engine", () => {
  test("the default scenario converges and loses no page", () => {
    const s = defaultScenario();
    expect(validateScenario(s)).toEqual([]);
    const r = run(s);
    expect(r.converged).toBe(true);
    expect(r.stop).toBe("fits-downtime");
    expect(r.reason).toBeNull();
    expect(r.check).toEqual({ ok: true, lostPages: 0, examples: [] });
    const pre = r.rounds.filter((x) => x.phase === "pre-copy");
    expect(pre[0].sentPages).toBe(s.guestBytes / 4096); // round 1 sends all RAM
    for (let i = 1; i < pre.length; i++) expect(pre[i].sentPages).toBe(pre[i - 1].reportedPages);
    const last = r.rounds[r.rounds.length - 1];
    expect(last.phase).toBe("stop-and-copy");
    expect(last.transferSeconds).toBeLessThanOrEqual(s.downtimeLimit);
    expect(r.totals.downtimeSeconds).toBe(last.transferSeconds);
    expect(r.totals.sentPages).toBe(r.rounds.reduce((a, x) => a + x.sentPages, 0));
    // A dirty-tracking harvest never reports fewer pages than were written.
    for (const x of r.rounds) expect(x.reportedPages).toBeGreaterThanOrEqual(x.writtenPages);
  });

  test("a plain type1 device cannot converge, and the reason names it", () => {
    const r = run({ ...defaultScenario("plain-type1"), guestBytes: 8 * 2 ** 30 });
    expect(r.converged).toBe(false);
    expect(r.stop).toBe("stalled");
    expect(r.reason).toMatch(/nic0 \(type1\) reported every mapped page dirty/);
    for (const x of r.rounds) expect(x.reportedPages).toBe(2 * 2 ** 20);
    expect(r.check.ok).toBe(true);
  });

  test("runs are reproducible from the seed, and the seed matters", () => {
    const s = small(4096, 7);
    expect(simulated(run(s).rounds)).toEqual(simulated(run(s).rounds));
    expect(simulated(run({ ...s, seed: 8 }).rounds)).not.toEqual(simulated(run(s).rounds));
  });

  test.each([
    [4096, 1],
    [4096, 2],
    [2 ** 21, 3],
    [2 ** 21, 4],
  ])("model-backed and stand-in backends agree round by round with a naive JS reference (page size %d, seed %d)", (pageSize, seed) => {
    for (const copy of ["byte", "word", "simd"] as const) {
      const s = { ...small(pageSize, seed), bitmapCopy: copy };
      const want = simulated(run(s, REFERENCE_BACKENDS).rounds);
      for (const table of [BACKENDS, STAND_IN_BACKENDS]) {
        const got = run(s, table);
        expect(simulated(got.rounds)).toEqual(want);
        expect(got.check.ok).toBe(true);
      }
    }
  });

  test("type1, emulated and hw-type1 devices harvest through the model's type1 container", () => {
    const r = run(small(4096, 11));
    const byDevice = new Map(r.backends.map((b) => [b.device, b]));
    expect(byDevice.get("d")).toMatchObject({ kind: "type1", fidelity: "model", harvestCall: "VFIO_IOMMU_DIRTY_PAGES GET_BITMAP", finalCall: "VFIO_IOMMU_UNMAP_DMA + GET_DIRTY_BITMAP" });
    expect(byDevice.get("c")).toMatchObject({ kind: "emulated", fidelity: "model" });
    expect(byDevice.get("b")).toMatchObject({ kind: "hw-type1", fidelity: "model", harvestCall: "VFIO_IOMMU_DIRTY_PAGES GET_BITMAP" });
    expect(byDevice.get("b")!.description).toMatch(/dirty-capable hardware/);
    expect(byDevice.get("a")).toMatchObject({ kind: "iommufd", fidelity: "model", harvestCall: "IOMMU_HWPT_GET_DIRTY_BITMAP", finalCall: "IOMMU_HWPT_GET_DIRTY_BITMAP, devices stopped" });
    // The emulated device's 64 pinned pages are reported on every read, the final one too.
    for (const round of r.rounds) expect(round.devices.find((d) => d.device === "c")!.reportedPages).toBeGreaterThanOrEqual(64);
    expect(r.rounds[r.rounds.length - 1].devices.find((d) => d.device === "d")!.reportedPages).toBe(r.scenario.guestBytes / 4096);
  });

  test("hardware kinds harvest from the model's page tables; skipping the IOTLB sync loses pages and is caught", () => {
    // 32 pages: they all fit in the 64-entry IOTLB.
    const w = { rate: 10e6, workingSet: 128 * 1024, hotSet: 128 * 1024, hotFraction: 1, burst: 4096 };
    const s = { ...small(4096, 12), downtimeLimit: 1e-6, maxRounds: 4, devices: [device("iommufd", "nic0", w)] };
    const good = run(s);
    expect(good.backends[0]).toMatchObject({ fidelity: "model" });
    expect(good.check.ok).toBe(true);
    const forgetful = { ...BACKENDS, iommufd: (spec: DeviceSpec, layout: GuestLayout, sc: Scenario) => new ModelIommufd(spec, layout, sc, true) };
    const bad = run(s, forgetful);
    // Hot pages stay cached in the IOTLB with their dirty state: after the clear they are
    // written again without setting D, so the harvest misses them.
    expect(bad.check.ok).toBe(false);
    expect(bad.check.lostPages).toBeGreaterThan(0);
  });

  test("iommufd devices harvest with IOMMU_HWPT_GET_DIRTY_BITMAP ioctls, the final harvest too, and lose no page", () => {
    const w = { rate: 40e6, workingSet: 64 * 2 ** 20, hotSet: 8 * 2 ** 20, hotFraction: 0.8, burst: 16384 };
    const s = { ...small(4096, 21), downtimeLimit: 0.1, devices: [device("iommufd", "nic0", w), device("iommufd", "nic1", { ...w, burst: 4096 })] };
    const made: ModelIommufd[] = [];
    const spy = {
      ...BACKENDS,
      iommufd: (spec: DeviceSpec, layout: GuestLayout, sc: Scenario) => {
        const b = new ModelIommufd(spec, layout, sc);
        made.push(b);
        return b;
      },
    };
    const r = run(s, spy);
    expect(r.check).toEqual({ ok: true, lostPages: 0, examples: [] });
    expect(r.converged).toBe(true);
    expect(r.rounds[r.rounds.length - 1].phase).toBe("stop-and-copy");
    // The same pages as the reference, round by round.
    expect(simulated(run(s, REFERENCE_BACKENDS).rounds)).toEqual(simulated(r.rounds));
    expect(made).toHaveLength(2);
    const regions = 2; // below and above 4 GiB
    for (const b of made) {
      // One GET_DIRTY_BITMAP per region per harvest: every pre-copy round and the final one.
      expect(b.ioctlCounts.get(iommufdUapi.IOMMU_HWPT_GET_DIRTY_BITMAP)).toBe(r.rounds.length * regions);
      expect(b.ioctlCounts.get(iommufdUapi.IOMMU_HWPT_SET_DIRTY_TRACKING)).toBe(1);
      expect(b.ioctlCounts.get(iommufdUapi.IOMMU_HWPT_ALLOC)).toBe(1);
      expect(b.ioctlCounts.get(iommufdUapi.IOMMU_IOAS_MAP)).toBe(regions);
    }
    for (const b of r.backends) expect(b).toMatchObject({ kind: "iommufd", fidelity: "model", harvestCall: "IOMMU_HWPT_GET_DIRTY_BITMAP" });
  });

  test("2 MiB leaves: hardware dirty bits report whole leaves, more than was written", () => {
    const w = { rate: 2e6, workingSet: 256 * 2 ** 20, hotSet: 0, hotFraction: 0, burst: 4096 };
    const s = { ...defaultScenario(), guestBytes: 4 * 2 ** 30, mappingPageSize: 2 ** 21, devices: [device("iommufd", "nic0", w)] };
    const r = run(s);
    const round1 = r.rounds[0];
    expect(round1.reportedPages % 512).toBe(0);
    expect(round1.reportedPages).toBeGreaterThan(4 * round1.writtenPages);
  });

  test("a harvest that drops bits is caught by the no-lost-page check", () => {
    const s = { ...defaultScenario(), guestBytes: 16 * 2 ** 30 };
    const r = run(s, droppingBits(BACKENDS, 97));
    expect(r.check.ok).toBe(false);
    expect(r.check.lostPages).toBeGreaterThan(0);
    expect(r.check.examples.length).toBeGreaterThan(0);
  });

  test("dropping bits only in the final (post-stop) harvest is caught too", () => {
    const r = run({ ...defaultScenario(), guestBytes: 16 * 2 ** 30 }, droppingBits(BACKENDS, 5, true));
    expect(r.check.ok).toBe(false);
  });

  test("a correct but different harvester (the reference) passes the check", () => {
    const r = run(small(4096, 9), REFERENCE_BACKENDS);
    expect(r.check.ok).toBe(true);
  });

  test("a failing model call ends the run with its errno instead of throwing", () => {
    const broken = {
      ...BACKENDS,
      iommufd: (...args: Parameters<typeof BACKENDS.iommufd>) => {
        const b = BACKENDS.iommufd(...args);
        return { ...b, spec: b.spec, fidelity: b.fidelity, description: b.description, setup: () => b.setup(), writer: { write: () => -22 }, harvester: b.harvester, dispose: () => b.dispose() };
      },
    };
    const r = runMigration(defaultScenario(), { backends: broken });
    expect("failure" in r && r.failure).toMatchObject({ device: "nic0", errno: 22 });
    expect("failure" in r && r.failure.message).toMatch(/EINVAL/);
  });

  test("the round limit forces stop-and-copy with a reason", () => {
    const s = { ...small(4096, 5), maxRounds: 1 };
    const r = run(s);
    expect(r.rounds.length).toBe(2);
    expect(r.converged).toBe(false);
    expect(r.stop).toBe("max-rounds");
    expect(r.reason).toMatch(/round limit \(1\)/);
    expect(r.check.ok).toBe(true);
  });

  test("writes during a long stop latency can push the downtime past the limit, and the reason says so", () => {
    const r = run({ ...small(4096, 6), devices: small(4096, 6).devices.slice(0, 3), stopLatency: 2 });
    const last = r.rounds[r.rounds.length - 1];
    expect(r.stop).toBe("fits-downtime");
    expect(last.bursts).toBeGreaterThan(0);
    expect(last.transferSeconds).toBeGreaterThan(r.scenario.downtimeLimit);
    expect(r.converged).toBe(false);
    expect(r.reason).toMatch(/stop latency/);
    expect(r.check.ok).toBe(true);
  });

  test("validateScenario rejects what the layout and workload cannot model", () => {
    const s = defaultScenario();
    expect(validateScenario({ ...s, guestBytes: 2 * 2 ** 40 })).toContain("guest size must be at most 1T");
    expect(validateScenario({ ...s, mappingPageSize: 2 ** 21, guestBytes: 2 ** 30 + 4096 }).join()).toMatch(/multiple of the mapping page size/);
    expect(validateScenario({ ...s, mappingPageSize: 8192 }).join()).toMatch(/4K, 2M or 1G/);
    expect(validateScenario({ ...s, devices: [] }).join()).toMatch(/at least one device/);
    expect(validateScenario({ ...s, maxRounds: 0 }).join()).toMatch(/max rounds/);
    expect(validateScenario({ ...s, devices: [device("emulated", "e", { workingSet: 2 ** 31 })] }).join()).toMatch(/at most 1G/);
  });
});
