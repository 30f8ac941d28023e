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
 */
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

const suite: BenchSuite = {
  name: "migrate",
  description: "wall time of whole migrate runs: default, --bandwidth 100Mbit, --bandwidth 1Mbit (target < 5 s each)",
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
    return out;
  },
};

export default suite;
