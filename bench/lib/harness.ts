/**
 * Benchmark harness: benchmark.js for the timing inside one process, several processes
 * for the statistics. Every case belongs to a group with one baseline case measured in
 * the same process (e.g. a plain memory copy of the same bytes); ratios are taken per
 * process, then the median over processes is reported, which cancels most host noise.
 *
 * benchmark.js is used without `setup`/`teardown`: with them it decompiles the test
 * function and closures stop resolving (shared/reference/performance.md §4.2).
 */
import Benchmark from "benchmark";

/** One timed operation. `bytes` is what one call processes (for GB/s). */
export interface BenchCase {
  /** Cases are compared within a group, against the group's baseline. */
  readonly group: string;
  readonly name: string;
  readonly bytes: number;
  /** Marks the group's baseline (exactly one per group). */
  readonly baseline?: boolean;
  readonly fn: () => void;
}

/** A suite: builds its cases (allocating what they need) once per process. */
export interface BenchSuite {
  readonly name: string;
  readonly description: string;
  /** Default number of processes whose medians are reported. */
  readonly runs?: number;
  /** Seconds benchmark.js may spend per case in one process. */
  readonly maxTime?: number;
  cases(): BenchCase[];
  /** Extra facts a suite reports per process (sizes, memory); medians are taken of numbers. */
  extras?(): Record<string, number>;
}

/** What one process measured for one case. */
export interface CaseRun {
  group: string;
  name: string;
  bytes: number;
  baseline: boolean;
  /** Mean seconds per call. */
  mean: number;
  /** Relative margin of error, percent. */
  rme: number;
  samples: number;
}

/** One process's output. */
export interface ProcessRun {
  suite: string;
  cases: CaseRun[];
  extras: Record<string, number>;
}

/** Times every case of `suite` in this process. */
export function runOnce(suite: BenchSuite, maxTime = suite.maxTime ?? 0.3): ProcessRun {
  const cases = suite.cases();
  const out: CaseRun[] = [];
  for (const c of cases) {
    const t0 = process.hrtime.bigint();
    c.fn(); // warm-up: JIT, page faults on fresh memory
    const warm = Number(process.hrtime.bigint() - t0) / 1e9;
    // Slow calls (tens of ms: JS byte loops over 32 MiB) get fewer samples so a suite
    // stays within minutes; fast ones get benchmark.js's usual five or more.
    const b = new Benchmark(c.name, c.fn, { maxTime, minTime: 0.025, minSamples: warm > 0.03 ? 3 : 5 });
    b.run({ async: false });
    if (b.error) throw b.error;
    out.push({
      group: c.group,
      name: c.name,
      bytes: c.bytes,
      baseline: Boolean(c.baseline),
      mean: b.stats.mean,
      rme: b.stats.rme,
      samples: b.stats.sample.length,
    });
  }
  return { suite: suite.name, cases: out, extras: suite.extras?.() ?? {} };
}

/** The median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Medians over processes for one case. */
export interface CaseSummary {
  group: string;
  name: string;
  bytes: number;
  baseline: boolean;
  /** Median over processes of bytes / mean seconds, in GB/s (1e9 bytes). */
  gbps: number;
  /** Median over processes of (this case's GB/s / the group baseline's GB/s in the same process). */
  ratio: number;
  /** Per-process GB/s, for the record. */
  gbpsRuns: number[];
  /** Median of per-process calls per second. */
  opsPerSec: number;
}

/** Folds several processes' runs into medians and same-process ratios. */
export function summarize(runs: readonly ProcessRun[]): CaseSummary[] {
  const first = runs[0];
  return first.cases.map((c, i) => {
    const perRun = runs.map((r) => {
      const me = r.cases[i];
      const base = r.cases.find((x) => x.group === me.group && x.baseline);
      const gbps = me.bytes / me.mean / 1e9;
      const baseGbps = base ? base.bytes / base.mean / 1e9 : NaN;
      return { gbps, ratio: gbps / baseGbps, ops: 1 / me.mean };
    });
    return {
      group: c.group,
      name: c.name,
      bytes: c.bytes,
      baseline: c.baseline,
      gbps: median(perRun.map((p) => p.gbps)),
      ratio: median(perRun.map((p) => p.ratio)),
      gbpsRuns: perRun.map((p) => p.gbps),
      opsPerSec: median(perRun.map((p) => p.ops)),
    };
  });
}

/** Renders summaries as an aligned text table, one block per group. */
export function formatTable(rows: readonly CaseSummary[]): string {
  const lines: string[] = [];
  const head = ["group", "case", "GB/s", "× baseline", "ops/s", "GB/s per run"];
  const body = rows.map((r) => [
    r.group,
    r.name + (r.baseline ? " (baseline)" : ""),
    r.gbps.toFixed(3),
    r.ratio.toFixed(3),
    r.opsPerSec >= 100 ? r.opsPerSec.toFixed(0) : r.opsPerSec.toFixed(2),
    r.gbpsRuns.map((g) => g.toFixed(2)).join(" "),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i >= 2 && i <= 4 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd();
  lines.push(fmt(head), widths.map((w) => "-".repeat(w)).join("  "));
  let prev = "";
  for (const b of body) {
    if (prev && b[0] !== prev) lines.push("");
    prev = b[0];
    lines.push(fmt(b));
  }
  return lines.join("\n");
}
