/**
 * Fuzz target `trace`: the recorded vfio-trace scripts (test/conformance/linux-6.1 and new),
 * replayed line by line with mutations (values replaced by edge values, keys dropped or
 * added, verbs swapped, lines deleted, repeated or borrowed from other scripts) through
 * the replay's TraceRunner, with the checks of test/type1/snapshot.test.ts on every ioctl:
 * a failed ioctl leaves the container's state as it was (minus Linux's partial effects),
 * the invariants hold, locked_vm never underflows, and nothing throws.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../../src/util/random";
import { WasmCore } from "../../src/wasm/core";
import { TraceRunner, parseTrace } from "../../src/trace";
import { strtoull } from "../../src/trace/parse";
import { errnoName } from "../../src/uapi/errno";
import { invariants, snapshot } from "../type1/state";
import type { Finding, Op, Session, Target } from "./engine";
import { firstDiff } from "./diff";

const ULLONG_MAX = 0xffff_ffff_ffff_ffffn;
import { traceFailureAllowance } from "./partial-effects";
import { EDGES, pick, weighted } from "./values";

const DIRS = [join(__dirname, "..", "conformance", "linux-6.1"), join(__dirname, "..", "conformance", "new")];

let corpusCache: Array<{ name: string; lines: string[] }> | null = null;

/** The recorded scripts, as lines without comments and blanks. */
export function corpus(): Array<{ name: string; lines: string[] }> {
  if (!corpusCache) {
    corpusCache = DIRS.flatMap((d) =>
      readdirSync(d)
        .filter((f) => f.endsWith(".trace"))
        .sort()
        .map((f) => ({ name: f, lines: readFileSync(join(d, f), "utf8").split("\n").map((l) => l.replace(/#.*/, "").trim()).filter((l) => l.length > 0) })),
    );
  }
  return corpusCache;
}

/** The world of one episode: which script it mutates. */
export interface TraceConfig {
  file: string;
}

/** A TraceRunner whose every ioctl is checked. */
export class TraceSession implements Session {
  readonly runner: TraceRunner;
  private out: Finding[] = [];
  private cur = "";
  /** Position in the script (generation state). */
  pos = 0;

  constructor(readonly cfg: TraceConfig, core?: WasmCore) {
    this.runner = new TraceRunner({ core });
    this.runner.start();
    const proc = this.runner.proc;
    const real = proc.ioctl.bind(proc);
    proc.ioctl = (fd, cmd, arg) => {
      const iommu = this.runner.iommu;
      const before = snapshot(iommu, proc);
      const r = real(fd, cmd, arg);
      if (r.ret < 0 && this.runner.iommu === iommu) {
        const allow = traceFailureAllowance(cmd, r.errno);
        if (allow !== "any") {
          const now = snapshot(iommu, proc, allow !== "bitmaps");
          const was = allow === "bitmaps" ? stripBitmaps(before) : before;
          const d = firstDiff(was, now);
          if (d) this.out.push({ kind: "state", op: this.cur, message: `failed ioctl 0x${cmd.toString(16)} (${errnoName(r.errno)}) changed the state: ${d}` });
        }
      }
      return r;
    };
  }

  step(op: Op): Finding[] {
    this.out = [];
    const text = op.line as string;
    this.cur = text.split(/\s+/)[0] ?? "";
    for (const line of parseTrace(text)) this.runner.step(line);
    const proc = this.runner.proc;
    const bad = invariants(this.runner.iommu, proc);
    if (bad.length) this.out.push({ kind: "invariant", op: this.cur, message: bad.join("; ") });
    if (proc.mm?.underflowWarnings) this.out.push({ kind: "invariant", op: this.cur, message: `locked_vm underflow: ${proc.mm.underflowWarnings}` });
    return this.out;
  }

  dispose(): void {
    this.runner.proc.exit();
  }
}

function stripBitmaps(s: unknown): unknown {
  const o = s as { dmas?: Array<{ bitmap: unknown }> };
  if (!o || !Array.isArray(o.dmas)) return s;
  return { ...o, dmas: o.dmas.map((d) => ({ ...d, bitmap: d.bitmap === null ? null : "present" })) };
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** A mutated value for key `k`. */
function mutateValue(rng: Rng, k: string, v: string): string {
  return weighted(rng, [
    [4, () => hex(pick(rng, EDGES))],
    [3, () => {
      const plus = v.startsWith("+");
      let n: bigint;
      try {
        n = BigInt(plus ? v.slice(1) : v);
      } catch {
        n = 0n;
      }
      n = n + BigInt(rng.range(-2, 2)) * 0x1000n + (rng.chance(0.2) ? BigInt(rng.range(-1, 1)) : 0n);
      if (n < 0n) n = 0n;
      return `${plus ? "+" : ""}${hex(n)}`;
    }],
    [2, () => `+${hex(BigInt(rng.range(0, 0x4000)) * 0x1000n)}`],
    [1, () => (k === "prot" ? pick(rng, ["none", "r", "rw", "x"]) : pick(rng, ["unlimited", "-1", "0x", "", "1e3", "0x1g"]))],
  ]);
}

function mutateLine(rng: Rng, line: string): string {
  const toks = line.split(/\s+/);
  return weighted(rng, [
    [6, () => {
      if (toks.length < 2) return line;
      const i = rng.range(1, toks.length - 1);
      const [k, v = ""] = toks[i].split("=");
      toks[i] = `${k}=${mutateValue(rng, k, v)}`;
      return toks.join(" ");
    }],
    [1, () => (toks.length > 1 ? toks.filter((_, i) => i === 0 || !rng.chance(0.3)).join(" ") : line)],
    [1, () => `${line} ${pick(rng, ["argsz", "flags", "count", "iova_step", "vaddr_step", "show", "pgsize", "bitmap_size"])}=${hex(pick(rng, EDGES))}`],
    [1, () => [pick(rng, ["map", "maps", "unmap", "dirty", "info", "ext", "locked", "memlock", "cap_ipc_lock", "mprotect", "munmap", "fill", "peek", "bogus"]), ...toks.slice(1)].join(" ")],
  ]);
}

function genTrace(rng: Rng, s: TraceSession): Op {
  const files = corpus();
  const f = files.find((x) => x.name === s.cfg.file) ?? files[0];
  const take = (): string => {
    const l = f.lines[s.pos % f.lines.length];
    s.pos++;
    return l;
  };
  const line = weighted(rng, [
    [10, () => take()],
    [6, () => mutateLine(rng, take())],
    [1, () => mutateLine(rng, pick(rng, pick(rng, files).lines))],
    [1, () => {
      s.pos++;
      return take();
    }],
    [0.2, () => `case fuzz${rng.chance(0.2) ? ` iommu=${pick(rng, [1, 3, 6, 0])}` : ""}${rng.chance(0.1) ? ` arena=${hex(pick(rng, [0x1000n, 0n, 1n << 30n, 0x4000000n]))}` : ""}`],
  ]);
  return { k: "line", line: bound(line) };
}

/**
 * Keeps one line's own cost bounded (the fuzzer hunts wrong answers, not slow scripts):
 * `maps count` at most 256 (the 65,536-entry limit is a conformance test of its own) and
 * at most 1 MiB shown by peek/show.
 */
export function bound(line: string): string {
  return line.replace(/\b(count|size|show)=(\S+)/g, (m, k: string, v: string) => {
    if (k === "size" && !line.startsWith("peek")) return m;
    // As the replay reads it: "-1" is 2^64-1, and num()'s `unlimited` is ULLONG_MAX (a
    // `maps count=unlimited` maps up to the 65,535-entry limit: 12 s under the checks).
    const n = v === "unlimited" ? ULLONG_MAX : strtoull(v.startsWith("+") ? v.slice(1) : v);
    const cap = k === "count" ? 256n : 0x100000n;
    return n > cap ? `${k}=${hex(cap)}` : m;
  });
}

/** The trace target. */
export const traceTarget: Target<TraceConfig> = {
  name: "trace",
  config: (rng) => ({ file: pick(rng, corpus()).name }),
  open: (cfg) => new TraceSession(cfg),
  gen: (rng, s) => genTrace(rng, s as TraceSession),
  extraReproducer: (_cfg, ops) => `# As a vfio-trace script (npm run fuzz -- --target trace --trace-file repro.trace):\ncase fuzz\n${ops.map((o) => o.line as string).join("\n")}\n`,
};

/** Runs a whole script under the fuzzer's checks; the first finding or null. */
export function checkTraceText(text: string): (Finding & { line: number }) | null {
  const s = new TraceSession({ file: "" });
  try {
    for (const line of parseTrace(text)) {
      const raw = text.split("\n")[line.lineno - 1] ?? "";
      const found = s.step({ k: "line", line: raw });
      if (found.length) return { ...found[0], line: line.lineno };
    }
  } catch (e) {
    return { kind: "exception", op: "line", message: String(e), line: -1 };
  } finally {
    s.dispose();
  }
  return null;
}
