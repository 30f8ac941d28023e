/**
 * `npm run bench [-- SUITE ...] [--runs N] [--max-time S]`
 *
 * Runs each suite (all by default) in N separate Node processes, prints a table of medians
 * (GB/s and the ratio to the baseline measured in the same process), and merges the result
 * into bench/results/latest.json under the suite's name.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { formatTable, median, ProcessRun, summarize } from "./lib/harness";
import { SUITES } from "./lib/suites";

function parseArgs(argv: string[]): { suites: string[]; runs?: number; maxTime?: number } {
  const suites: string[] = [];
  let runs: number | undefined;
  let maxTime: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--runs") runs = Number(argv[++i]);
    else if (a === "--max-time") maxTime = Number(argv[++i]);
    else if (a === "-h" || a === "--help") {
      console.log(`usage: npm run bench -- [SUITE ...] [--runs N] [--max-time SECONDS]\nsuites: ${Object.keys(SUITES).join(", ")}`);
      process.exit(0);
    } else if (a in SUITES) suites.push(a);
    else {
      console.error(`bench: unknown suite or option '${a}' (suites: ${Object.keys(SUITES).join(", ")})`);
      process.exit(2);
    }
  }
  if ((runs !== undefined && !(runs >= 1)) || (maxTime !== undefined && !(maxTime > 0))) {
    console.error("bench: --runs needs a positive integer and --max-time a positive number");
    process.exit(2);
  }
  return { suites: suites.length ? suites : Object.keys(SUITES), runs, maxTime };
}

function main(): void {
  const opts = parseArgs(process.argv.slice(2));
  const resultsDir = join(__dirname, "results");
  const file = join(resultsDir, "latest.json");
  mkdirSync(resultsDir, { recursive: true });
  const all: Record<string, unknown> = existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : {};
  const tsx = join(__dirname, "..", "node_modules", ".bin", "tsx");
  for (const name of opts.suites) {
    const suite = SUITES[name];
    const runs = opts.runs ?? suite.runs ?? 5;
    console.log(`\n== ${name}: ${suite.description}\n   ${runs} processes, medians reported`);
    const t0 = Date.now();
    const results: ProcessRun[] = [];
    for (let r = 0; r < runs; r++) {
      process.stdout.write(`   process ${r + 1}/${runs} ...`);
      const args = [join(__dirname, "lib", "child.ts"), name, ...(opts.maxTime ? [String(opts.maxTime)] : [])];
      const out = execFileSync(tsx, args, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 26 });
      results.push(JSON.parse(out.trim().split("\n").pop() as string) as ProcessRun);
      process.stdout.write(` ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    }
    const rows = summarize(results);
    if (rows.length) console.log("\n" + formatTable(rows));
    const extras: Record<string, number> = {};
    for (const k of Object.keys(results[0].extras)) extras[k] = median(results.map((r) => r.extras[k]));
    if (Object.keys(extras).length) console.log("\n" + Object.entries(extras).map(([k, v]) => `   ${k}: ${v}`).join("\n"));
    all[name] = {
      date: new Date().toISOString(),
      node: process.version,
      cpu: cpus()[0]?.model ?? "unknown",
      runs,
      description: suite.description,
      cases: rows,
      extras,
    };
  }
  writeFileSync(file, JSON.stringify(all, null, 2) + "\n");
  console.log(`\nwrote ${file}`);
}

main();
