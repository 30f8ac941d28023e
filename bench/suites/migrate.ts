/**
 * Wall time of whole `vfio-sim migrate` runs (issue 12: run time independent of simulated
 * time). Each case is one full migration on the model's backends, as the CLI runs it: the
 * default scenario (10 Gbit/s), and the same guest on a 100 Mbit/s and a 1 Mbit/s link,
 * whose rounds last minutes to hours of simulated time while every device re-dirties its
 * whole working set each round. A process runs each case RUNS_PER_PROCESS times and
 * reports the median wall and CPU seconds; `npm run bench -- migrate` takes the median of
 * those over processes. Every run must end with an exact ledger (0 lost pages), or the
 * suite throws. benchmark.js is not used: one run takes seconds, and the figure wanted is
 * the seconds, not a rate.
 *
 * `1T iommufd` is issue 13's acceptance run: the built CLI (`npm run build` first) as a
 * child process, `vfio-sim migrate --guest 1T --device iommufd`, once per process; its
 * figures are the process's wall seconds (start-up, set-up of 2 GiB of 4 KiB page table,
 * rounds and teardown: target <= 10 s) and its CPU seconds (user + system of the child,
 * from /proc/self/stat; NaN where there is none).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { BenchCase, BenchSuite } from "../lib/harness";
import { median } from "../lib/harness";
import { defaultScenario, runMigration, type Scenario } from "../../src/migrate";

const RUNS_PER_PROCESS = 3;

const CASES: ReadonlyArray<[string, Scenario]> = [
  ["default", defaultScenario()],
  ["100Mbit", { ...defaultScenario(), bandwidth: 100e6 / 8 }],
  ["1Mbit", { ...defaultScenario(), bandwidth: 1e6 / 8 }],
];

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** CPU seconds of this process's reaped children (Linux /proc; NaN elsewhere). */
function childCpuSeconds(): number {
  try {
    const f = readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ");
    return (Number(f[13]) + Number(f[14])) / 100; // cutime, cstime (fields 16, 17) in USER_HZ
  } catch {
    return NaN;
  }
}

/** Issue 13's run through the CLI, as a user runs it: wall and CPU seconds of the process. */
function cli1T(out: Record<string, number>): void {
  const cli = join(__dirname, "../../dist/cli/main.js");
  if (!existsSync(cli)) throw new Error("1T iommufd: run `npm run build` first (needs dist/cli/main.js)");
  const c0 = childCpuSeconds();
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [cli, "migrate", "--guest", "1T", "--device", "iommufd", "--json"], { encoding: "utf8", maxBuffer: 1 << 24 });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`1T iommufd: exit ${r.status}: ${r.stderr}`);
  const j = JSON.parse(r.stdout) as { check: { ok: boolean }; rounds: unknown[]; totals: { harvestMs: number } };
  if (!j.check.ok) throw new Error("1T iommufd: lost pages");
  out["1T iommufd rounds"] = j.rounds.length;
  out["1T iommufd process wall s"] = Number(wall.toFixed(3));
  out["1T iommufd process cpu s"] = Number((childCpuSeconds() - c0).toFixed(3));
  out["1T iommufd harvest s"] = Number((j.totals.harvestMs / 1000).toFixed(3));
}

const suite: BenchSuite = {
  name: "migrate",
  description: "wall time of whole migrate runs: default, --bandwidth 100Mbit, --bandwidth 1Mbit (target < 5 s each); the CLI's --guest 1T --device iommufd (target <= 10 s)",
  runs: 3,
  cases(): BenchCase[] {
    return [];
  },
  extras(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, s] of CASES) {
      const wall: number[] = [];
      const cpu: number[] = [];
      for (let i = 0; i < RUNS_PER_PROCESS; i++) {
        const c0 = cpuSeconds();
        const t0 = performance.now();
        const r = runMigration(s);
        wall.push((performance.now() - t0) / 1000);
        cpu.push(cpuSeconds() - c0);
        if ("failure" in r) throw new Error(`${name}: ${r.failure.message}`);
        if (!r.result.check.ok) throw new Error(`${name}: ${r.result.check.lostPages} lost pages`);
        out[`${name} rounds`] = r.result.rounds.length;
        out[`${name} simulated s`] = Math.round(r.result.totals.simulatedSeconds);
      }
      out[`${name} wall s`] = Number(median(wall).toFixed(3));
      out[`${name} cpu s`] = Number(median(cpu).toFixed(3));
    }
    cli1T(out);
    return out;
  },
};

export default suite;
