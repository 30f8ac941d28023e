import { WasmCore } from "../../src/wasm/core";
import { concurrentBackends, defaultScenario, device, runMigration, type BackendTable, type DeviceBackend, type HarvestSink, type MigrationResult, type Scenario } from "../../src/migrate";
import { DmaWorkers, concurrentDma } from "../../src/threads";
import { runMigrateCommand } from "../../src/cli/commands/migrate";

// `vfio-sim migrate --workers N`: iommufd devices DMA in worker threads (atomic A/D
// updates through the HWPT's page table in a shared core) and the harvest of each
// pre-copy round starts while they are still writing. The ledger must stay exact.

jest.setTimeout(300_000);

let core: WasmCore;
let pool: DmaWorkers;

beforeAll(() => {
  core = WasmCore.createShared();
  pool = new DmaWorkers(core, 2);
});

afterAll(async () => {
  await pool.terminate();
});

function scenario(seed: number): Scenario {
  const w = { rate: 400e6, workingSet: 256 * 2 ** 20, hotSet: 16 * 2 ** 20, hotFraction: 0.7, burst: 16384 };
  return {
    ...defaultScenario(),
    guestBytes: 3 * 2 ** 30 + 512 * 2 ** 20, // both RAM regions
    bandwidth: 1.25e9,
    downtimeLimit: 0.05,
    maxRounds: 5,
    seed,
    devices: [
      device("iommufd", "nic0", w),
      device("iommufd", "nic1", { ...w, burst: 4096, hotFraction: 0.95 }),
      device("emulated", "emu0", { ...w, rate: 20e6 }, 256 * 1024), // stays on this thread
    ],
  };
}

function run(s: Scenario, backends: BackendTable): MigrationResult {
  const r = runMigration(s, { backends, dma: concurrentDma(pool) });
  if ("failure" in r) throw new Error(r.failure.message);
  return r.result;
}

test("devices in workers, harvests racing them: no page lost over many seeds", () => {
  let bursts = 0;
  for (let seed = 1; seed <= 6; seed++) {
    const r = run(scenario(seed), concurrentBackends(core));
    expect(r.check).toEqual({ ok: true, lostPages: 0, examples: [] });
    expect(r.rounds.length).toBeGreaterThanOrEqual(3);
    for (const x of r.rounds) for (const d of x.devices) bursts += d.bursts;
    // Round 1 sent all of RAM; every later round sent what the previous harvest reported.
    const pre = r.rounds.filter((x) => x.phase === "pre-copy");
    for (let i = 1; i < pre.length; i++) expect(pre[i].sentPages).toBe(pre[i - 1].reportedPages);
  }
  expect(bursts).toBeGreaterThan(100_000);
  expect(core.liveBlocks).toBe(0);
});

/** Drops every 7th reported page of iommufd harvests, keeping the device concurrent. */
function dropping(table: BackendTable): BackendTable {
  return {
    ...table,
    iommufd: (spec, layout, sc, pinned) => {
      const b = table.iommufd(spec, layout, sc, pinned);
      const h = b.harvester;
      const wrapped: DeviceBackend = {
        spec: b.spec,
        fidelity: b.fidelity,
        description: b.description,
        writer: b.writer,
        setup: () => b.setup(),
        dispose: () => b.dispose(),
        get concurrent() {
          return b.concurrent;
        },
        harvester: {
          call: h.call,
          finalCall: h.finalCall,
          start: () => h.start(),
          harvest: () => h.harvest(),
          finalHarvest: () => h.finalHarvest(),
          collect(sink: HarvestSink) {
            h.collect((page, bits, nbits) => {
              const copy = bits.slice();
              let seen = 0;
              for (let i = 0; i < nbits; i++) if ((copy[i >> 3] >> (i & 7)) & 1 && ++seen % 7 === 0) copy[i >> 3] &= ~(1 << (i & 7));
              sink(page, copy, nbits);
            });
          },
        },
      };
      return wrapped;
    },
  };
}

test("the ledger still catches a harvest that drops bits when devices run in workers", () => {
  const r = run(scenario(3), dropping(concurrentBackends(core)));
  expect(r.check.ok).toBe(false);
  expect(r.check.lostPages).toBeGreaterThan(0);
});

describe("vfio-sim migrate --workers", () => {
  const io = () => {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s), isTTY: false } };
  };

  test("runs the default line-up with its iommufd device in workers and loses no page", () => {
    const t = io();
    expect(runMigrateCommand(["--workers", "2", "--guest", "4G", "--json"], t.io)).toBe(0);
    const doc = JSON.parse(t.out.join(""));
    expect(doc.check).toEqual({ ok: true, lostPages: 0, examples: [] });
  });

  test.each([["0"], ["17"], ["x"]])("--workers %s is a usage error", (n) => {
    const t = io();
    expect(runMigrateCommand(["--workers", n], t.io)).toBe(2);
    expect(t.err.join("")).toMatch(/worker/);
  });

  test("--workers does not combine with --stand-ins", () => {
    const t = io();
    expect(runMigrateCommand(["--workers", "1", "--stand-ins"], t.io)).toBe(2);
  });
});
