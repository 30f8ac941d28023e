/**
 * The fuzzer's command line:
 *
 *   npm run fuzz -- --target type1|iommufd|vhost|trace|vfio|all --seed N [--time S] [--calls N]
 *                   [--episode N] [--strict] [--no-minimise] [--out DIR]
 *   npm run fuzz -- --replay repro.json          (a reproducer's JSON: prints the finding)
 *   npm run fuzz -- --target trace --trace-file x.trace   (one trace under the fuzzer's checks)
 *
 * Prints calls, calls/s, known-open hits and every new finding with its minimised
 * reproducer. Exit status 1 when a new finding was made.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { campaign, reproducer, toJson, type Report } from "./engine";
import { TARGETS, replayRepro } from "./targets";

function usage(msg?: string): never {
  if (msg) console.error(`fuzz: ${msg}`);
  console.error("usage: npm run fuzz -- --target type1|iommufd|vhost|trace|vfio|all --seed N [--time S] [--calls N] [--episode N] [--strict] [--no-minimise] [--out DIR]");
  process.exit(2);
}

function main(argv: string[]): number {
  const opt = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) usage(`unexpected ${a}`);
    if (["--strict", "--no-minimise", "--help"].includes(a)) flags.add(a);
    else opt.set(a, argv[++i] ?? usage(`${a} needs a value`));
  }
  if (flags.has("--help")) usage();
  if (opt.has("--replay")) {
    const f = replayRepro(readFileSync(opt.get("--replay")!, "utf8"));
    console.log(f ? `${f.kind} at call ${f.call} (${f.op}): ${f.message}` : "no finding");
    return f ? 1 : 0;
  }
  if (opt.has("--trace-file")) {
    const { checkTraceText } = require("./trace") as typeof import("./trace");
    const f: { kind: string; op: string; message: string } | null = checkTraceText(readFileSync(opt.get("--trace-file")!, "utf8"));
    console.log(f ? `${f.kind} (${f.op}): ${f.message}` : "no finding");
    return f ? 1 : 0;
  }
  const name = opt.get("--target") ?? usage("--target is required");
  const names = name === "all" ? Object.keys(TARGETS) : [name];
  for (const n of names) if (!TARGETS[n]) usage(`unknown target ${n} (have: ${Object.keys(TARGETS).join(", ")})`);
  const seed = Number(opt.get("--seed") ?? "1");
  const time = opt.has("--time") ? Number(opt.get("--time")) : undefined;
  const calls = opt.has("--calls") ? Number(opt.get("--calls")) : undefined;
  if (!Number.isInteger(seed) || (time !== undefined && !(time > 0)) || (calls !== undefined && !(calls > 0))) usage("bad --seed/--time/--calls");
  const out = opt.get("--out");
  if (out) mkdirSync(out, { recursive: true });
  let bad = 0;
  for (const n of names) {
    const target = TARGETS[n];
    const perTarget = time === undefined ? undefined : (time * 1000) / names.length;
    const res = campaign(target, {
      seed,
      timeMs: perTarget ?? (calls === undefined ? 10_000 : undefined),
      calls,
      episodeLen: opt.has("--episode") ? Number(opt.get("--episode")) : undefined,
      strict: flags.has("--strict"),
      minimise: !flags.has("--no-minimise"),
      onReport: (r: Report) => {
        bad++;
        const text = reproducer(target, r);
        console.log(`\n=== NEW FINDING [${n}] ${r.signature}\n${r.finding.message}\n--- reproducer (${r.ops.length} calls, seed ${seed}, episode seed ${r.seed}):\n${text}`);
        if (out) {
          const base = join(out, `${n}-${r.seed}`);
          writeFileSync(`${base}.json`, toJson({ target: n, cfg: r.cfg, ops: r.ops }));
          writeFileSync(`${base}.repro.txt`, text);
        }
      },
    });
    const fuzzMs = res.ms - res.minimiseMs;
    const rate = fuzzMs > 0 ? Math.round((res.calls * 1000) / fuzzMs) : 0;
    const known = Object.entries(res.knownHits).map(([id, c]) => `${id}×${c}`).join(" ") || "none";
    console.log(`[${n}] seed ${seed}: ${res.calls} calls in ${res.episodes} episodes, ${(res.ms / 1000).toFixed(1)} s (${(res.minimiseMs / 1000).toFixed(1)} s minimising), ${rate} calls/s; new findings ${res.reports.length}; known-open hits: ${known}`);
  }
  return bad ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
