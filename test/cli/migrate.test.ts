import { main } from "../../src/cli/main";
import type { CliIo } from "../../src/cli/command";
import { runMigrateCommand } from "../../src/cli/commands/migrate";
import { BACKENDS } from "../../src/migrate";
import { droppingBits } from "../migrate/reference";

function capture(isTTY = false): CliIo & { stdout: string; stderr: string } {
  const io = {
    stdout: "",
    stderr: "",
    isTTY,
    out(s: string) {
      io.stdout += s;
    },
    err(s: string) {
      io.stderr += s;
    },
  };
  return io;
}

/** A small, quick scenario for CLI plumbing tests. */
const SMALL = ["--guest", "8G", "--rate", "50MB/s", "--working-set", "512M", "--hot-set", "32M", "--downtime", "100ms"];

describe("vfio-sim migrate", () => {
  test("--json prints one machine-readable document that agrees with itself", async () => {
    const io = capture();
    expect(await main(["migrate", ...SMALL, "--json", "--seed", "3"], io)).toBe(0);
    expect(io.stderr).toBe("");
    const doc = JSON.parse(io.stdout);
    expect(doc.schema).toBe("vfio-sim.migrate/1");
    expect(doc.scenario.guestBytes).toBe(8 * 2 ** 30);
    expect(doc.scenario.seed).toBe(3);
    expect(doc.scenario.downtimeLimit).toBeCloseTo(0.1);
    expect(doc.scenario.devices.map((d: { kind: string }) => d.kind)).toEqual(["iommufd", "emulated"]);
    expect(doc.regions).toEqual([
      { name: "below-4g", gpa: 0, bytes: 3 * 2 ** 30 },
      { name: "above-4g", gpa: 4 * 2 ** 30, bytes: 5 * 2 ** 30 },
    ]);
    expect(typeof doc.converged).toBe("boolean");
    expect(doc.check.ok).toBe(true);
    const rounds = doc.rounds as Array<{ phase: string; sentPages: number; reportedPages: number; transferSeconds: number }>;
    expect(rounds[0].sentPages).toBe(2 * 2 ** 20);
    expect(rounds[rounds.length - 1].phase).toBe("stop-and-copy");
    expect(doc.totals.sentPages).toBe(rounds.reduce((a, r) => a + r.sentPages, 0));
    expect(doc.totals.downtimeSeconds).toBe(rounds[rounds.length - 1].transferSeconds);
    expect(doc.converged).toBe(doc.totals.downtimeSeconds <= doc.scenario.downtimeLimit && doc.stop === "fits-downtime");
    expect(doc.backends.map((b: { harvestCall: string }) => b.harvestCall)).toEqual(["IOMMU_HWPT_GET_DIRTY_BITMAP", "VFIO_IOMMU_DIRTY_PAGES GET_BITMAP"]);
    expect(doc.backends.map((b: { fidelity: string }) => b.fidelity)).toEqual(["model", "model"]);
  });

  test("--stand-ins runs every device on its stand-in and reports the same rounds", async () => {
    const model = capture();
    const stand = capture();
    expect(await main(["migrate", ...SMALL, "--scenario", "all-kinds", "--json"], model)).toBe(0);
    expect(await main(["migrate", ...SMALL, "--scenario", "all-kinds", "--json", "--stand-ins"], stand)).toBe(0);
    const a = JSON.parse(model.stdout);
    const b = JSON.parse(stand.stdout);
    expect(b.backends.every((x: { fidelity: string }) => x.fidelity === "stand-in")).toBe(true);
    expect(a.backends.filter((x: { fidelity: string }) => x.fidelity === "model").map((x: { kind: string }) => x.kind).sort()).toEqual(["emulated", "hw-type1", "iommufd", "type1"]);
    const pages = (d: { rounds: Array<{ sentPages: number; reportedPages: number }> }) => d.rounds.map((r) => [r.sentPages, r.reportedPages]);
    expect(pages(a)).toEqual(pages(b));
  });

  test("the same seed gives the same --json rounds; the plain type1 line-up reports why it cannot converge", async () => {
    const strip = (s: string) => JSON.stringify(JSON.parse(s).rounds.map((r: { harvestMs: number; devices: unknown[] }) => ({ ...r, harvestMs: 0, devices: r.devices.length })));
    const a = capture();
    const b = capture();
    await main(["migrate", ...SMALL, "--json"], a);
    await main(["migrate", ...SMALL, "--json"], b);
    expect(strip(a.stdout)).toBe(strip(b.stdout));
    const p = capture();
    expect(await main(["migrate", ...SMALL, "--scenario", "plain-type1", "--json"], p)).toBe(0);
    const doc = JSON.parse(p.stdout);
    expect(doc.converged).toBe(false);
    expect(doc.reason).toMatch(/every mapped page dirty/);
  });

  test("--profile picks the kernel the type1 containers model", async () => {
    const io = capture();
    expect(await main(["migrate", ...SMALL, "--scenario", "all-kinds", "--profile", "linux-6.12", "--json"], io)).toBe(0);
    const doc = JSON.parse(io.stdout);
    expect(doc.scenario.type1Profile).toBe("linux-6.12");
    expect(doc.check.ok).toBe(true);
    const plain = capture();
    expect(await main(["migrate", ...SMALL, "--profile", "linux-6.12"], plain)).toBe(0);
    expect(plain.stdout).toMatch(/seed 1, type1 profile linux-6\.12\n/);
  });

  test("plain output: header, one line per round, the table and the verdict; no progress bar off a TTY", async () => {
    const io = capture(false);
    expect(await main(["migrate", ...SMALL, "--device", "hw-type1:nicA", "--device", "emulated:gpu,pinned=1M"], io)).toBe(0);
    expect(io.stdout).toMatch(/Guest 8 GiB \(below-4g 3 GiB @ 0x0, above-4g 5 GiB @ 0x100000000\)/);
    expect(io.stdout).toMatch(/nicA\s+hw-type1/);
    expect(io.stdout).toMatch(/gpu\s+emulated .* 1 MiB pinned/);
    expect(io.stdout).toMatch(/^round +1 +sending +8 GiB/m);
    expect(io.stdout).toMatch(/round +phase +sent +transfer \(sim\)/);
    expect(io.stdout).toMatch(/stop-and-copy/);
    expect(io.stdout).toMatch(/No-lost-page check: OK/);
    expect(io.stdout).not.toMatch(/\r|\[#/);
  });

  test("on a TTY each round draws a progress bar", async () => {
    const io = capture(true);
    expect(await main(["migrate", ...SMALL], io)).toBe(0);
    expect(io.stdout).toMatch(/\x1b\[1A\r\x1b\[2K\[#{24}\] 100%  round  1/);
  });

  test("a harvest that drops dirty bits makes the command fail with exit 1", () => {
    const io = capture();
    expect(runMigrateCommand(SMALL, io, droppingBits(BACKENDS, 31))).toBe(1);
    expect(io.stderr).toMatch(/LOST DIRTY PAGES/);
    expect(io.stdout).toMatch(/No-lost-page check FAILED/);
    const ok = capture();
    expect(runMigrateCommand(SMALL, ok, BACKENDS)).toBe(0);
  });

  test.each([
    [["--guest", "2T"], /at most 1T/],
    [["--guest", "lots"], /bad guest size/],
    [["--page-size", "8K"], /4K, 2M or 1G/],
    [["--guest", "3G", "--page-size", "1G", "--guest", "4G"], /given twice/],
    [["--device", "quantum"], /unknown device kind/],
    [["--device", "iommufd,speed=3"], /unknown device key/],
    [["--device", "iommufd,pinned=1M"], /emulated devices only/],
    [["--device", "iommufd:a", "--device", "emulated:a"], /used twice/],
    [["--bandwidth", "fast"], /bad bandwidth/],
    [["--downtime", "-1"], /bad downtime/],
    [["--max-rounds", "0"], /max rounds/],
    [["--bitmap-copy", "avx"], /byte, word or simd/],
    [["--profile", "linux-5.4"], /unknown --profile 'linux-5.4' \(linux-6.1, linux-6.12, mainline\)/],
    [["--hot-fraction", "2"], /hot fraction/],
    [["--working-set", "128G"], /larger than the guest/],
    [["--scenario", "nope"], /unknown scenario/],
    [["--seed"], /needs a value/],
    [["--frobnicate"], /unknown option/],
    [["extra"], /unexpected argument/],
  ])("bad options %j exit 2 with a clear message", async (args, msg) => {
    const io = capture();
    expect(await main(["migrate", ...(args as string[])], io)).toBe(2);
    expect(io.stderr).toMatch(msg as RegExp);
    expect(io.stdout).toBe("");
  });

  test("--report into a missing directory is refused before the run, exit 2", async () => {
    const io = capture();
    expect(await main(["migrate", ...SMALL, "--report", "/nonexistent-dir/run.html"], io)).toBe(2);
    expect(io.stderr).toMatch(/cannot write report '\/nonexistent-dir\/run.html': directory '\/nonexistent-dir' does not exist/);
    expect(io.stdout).toBe(""); // nothing ran
    const dir = capture();
    expect(await main(["migrate", ...SMALL, `--report=${__dirname}`], dir)).toBe(2);
    expect(dir.stderr).toMatch(/it is a directory/);
  });

  test("--guest 0 is one mistake with one message", async () => {
    const io = capture();
    expect(await main(["migrate", "--guest", "0"], io)).toBe(2);
    expect(io.stderr).toBe("vfio-sim migrate: guest size must be at least 4K, got '0'\nTry 'vfio-sim migrate --help'.\n");
  });

  test("a guest too small for the default working sets says what it shrank", async () => {
    const io = capture();
    expect(await main(["migrate", "--guest", "100K", "--json"], io)).toBe(0);
    expect(io.stderr).toMatch(/^vfio-sim migrate: note: default working sets shrunk to fit the 100 KiB guest .*: nic0 8 GiB -> 4 KiB, vgpu0 512 MiB -> 4 KiB;/);
    expect(JSON.parse(io.stdout).scenario.devices.map((d: { workload: { workingSet: number } }) => d.workload.workingSet)).toEqual([4096, 4096]);
    const given = capture();
    expect(await main(["migrate", "--guest", "100K", "--working-set", "8K", "--hot-set", "4K", "--json"], given)).toBe(0);
    expect(given.stderr).toBe(""); // nothing the user set is changed, so nothing to say
  });

  test.each([["4K"], ["64M"], ["1G"]])("default workloads shrink to fit a %s guest", async (g) => {
    const io = capture();
    expect(await main(["migrate", "--guest", g, "--json"], io)).toBe(0);
    const doc = JSON.parse(io.stdout);
    for (const d of doc.scenario.devices) {
      expect(d.workload.workingSet).toBeLessThanOrEqual(Math.max(4096, doc.scenario.guestBytes / 2));
      expect(d.workload.hotSet).toBeLessThanOrEqual(d.workload.workingSet);
      expect(d.pinned).toBeLessThanOrEqual(d.workload.hotSet);
    }
    expect(doc.check.ok).toBe(true);
  });

  test("--help lists every option and kind and exits 0", async () => {
    const io = capture();
    expect(await main(["migrate", "--help"], io)).toBe(0);
    for (const o of ["--guest", "--page-size", "--device", "--rate", "--working-set", "--hot-set", "--hot-fraction", "--burst", "--bandwidth", "--downtime", "--max-rounds", "--bitmap-copy", "--seed", "--json", "--report", "type1", "emulated", "hw-type1", "iommufd"]) {
      expect(io.stdout).toContain(o);
    }
    const top = capture();
    await main(["--help"], top);
    expect(top.stdout).toMatch(/migrate +run a pre-copy live migration/);
  });
});
