/**
 * The fuzzer's engine, shared by every target: seeded episodes of generated calls, a
 * finding per episode at most (the first check that fails), delta-debugging of the call
 * list, and the known-open allow-list.
 *
 * An episode is a fresh world (a config drawn from the episode's seed) and up to
 * `episodeLen` calls, each generated from the live world but stored as plain data, so any
 * sub-list can be replayed on a fresh world of the same config: that is what minimisation
 * and the printed reproducers do.
 */
import { Rng } from "../../src/util/random";
import { knownOpenFor, KnownOpen } from "./known-open";

/** What went wrong after a call. */
export type FindingKind =
  /** A JS exception escaped a model call (TypeError, RangeError, ...). */
  | "exception"
  /** A WebAssembly trap (RuntimeError) escaped a model call. */
  | "trap"
  /** A failed call changed the model's state (and that change is not a listed Linux partial effect). */
  | "state"
  /** A model invariant broke (accounting, overlaps, aperture, tree shape, ...). */
  | "invariant"
  /** A page a device wrote while tracking was not reported by a successful harvest. */
  | "lost-dirty"
  /** Another post-condition of a successful call (what Linux guarantees afterwards). */
  | "post"
  /** One call took longer than the slow-call limit (a hang in the making). */
  | "slow";

/** One failed check. */
export interface Finding {
  kind: FindingKind;
  /** Name of the call kind that was running (the op's `k`). */
  op: string;
  /** What was seen; the first line is the finding's identity (numbers are ignored). */
  message: string;
}

/** A generated call: plain JSON-able data with its kind in `k`. */
export interface Op {
  k: string;
  [key: string]: unknown;
}

/** A live world of one episode. */
export interface Session {
  /** Runs one call and its checks; the findings (empty when every check held). Exceptions from model calls are caught by the engine. */
  step(op: Op): Finding[];
  /** Releases the world. */
  dispose(): void;
}

/** A fuzz target. */
export interface Target<C = unknown> {
  readonly name: string;
  /** The world's configuration for an episode, drawn from its seed (plain data). */
  config(rng: Rng): C;
  /** Builds the world. */
  open(cfg: C): Session;
  /** The next call for this world. */
  gen(rng: Rng, s: Session): Op;
  /** Extra reproducer forms (e.g. a .trace script), or null. */
  extraReproducer?(cfg: C, ops: Op[]): string | null;
}

/** Slow-call limit: a single model call taking longer than this is a finding. */
export const SLOW_CALL_MS = 10_000;

/** Identity of a finding, for minimisation and de-duplication: kind, op and the first line without numbers. */
export function signature(f: Finding): string {
  const first = f.message.split("\n")[0].replace(/0x[0-9a-f]+|\d+/gi, "#");
  return `${f.kind}:${f.op}:${first}`;
}

function classify(e: unknown, op: Op): Finding {
  // WebAssembly.RuntimeError is not in this project's typings (see src/wasm/webassembly-types.ts).
  const RuntimeError = (globalThis as { WebAssembly?: { RuntimeError?: new () => Error } }).WebAssembly?.RuntimeError;
  const isTrap = RuntimeError !== undefined && e instanceof RuntimeError;
  const err = e instanceof Error ? e : new Error(String(e));
  const stack = (err.stack ?? "").split("\n").slice(0, 6).join("\n");
  return { kind: isTrap ? "trap" : "exception", op: op.k, message: `${err.name}: ${err.message}\n${stack}` };
}

/** Runs one call with the engine's own checks (exceptions, traps, time). */
function runStep(s: Session, op: Op): Finding[] {
  const t0 = Date.now();
  let found: Finding[];
  try {
    found = s.step(op);
  } catch (e) {
    return [classify(e, op)];
  }
  const dt = Date.now() - t0;
  if (dt > SLOW_CALL_MS) found = [...found, { kind: "slow", op: op.k, message: `call took ${dt} ms (limit ${SLOW_CALL_MS} ms)` }];
  return found;
}

/** The outcome of one episode. */
export interface Episode<C = unknown> {
  seed: number;
  cfg: C;
  ops: Op[];
  /** The first finding that is not known-open (or a known-open one that ends the episode). */
  finding: Finding | null;
  /** Index in `ops` of the call whose checks failed. */
  at: number;
  /** Known-open findings seen, by ID. */
  known: Record<string, number>;
  /** The known-open entry that ended the episode, if one did. */
  endedBy: KnownOpen | null;
}

/** Sorts one call's findings: known-open ones are counted; returns the one that ends the episode. */
function triage(target: string, found: Finding[], strict: boolean, known: Record<string, number>): { stop: Finding | null; by: KnownOpen | null } {
  for (const f of found) {
    const k = strict ? null : knownOpenFor(target, f);
    if (!k) return { stop: f, by: null };
    known[k.id] = (known[k.id] ?? 0) + 1;
    if (!k.continues) return { stop: f, by: k };
  }
  return { stop: null, by: null };
}

/** Runs a fresh episode of at most `len` calls (stops at the first finding that is not a continuing known-open one). */
export function runEpisode<C>(target: Target<C>, seed: number, len: number, deadline = Infinity, strict = false): Episode<C> {
  const rng = new Rng(seed);
  const cfg = target.config(rng);
  const s = target.open(cfg);
  const ops: Op[] = [];
  const known: Record<string, number> = {};
  try {
    for (let i = 0; i < len; i++) {
      if ((i & 15) === 0 && Date.now() > deadline) break;
      const op = target.gen(rng, s);
      ops.push(op);
      const t = triage(target.name, runStep(s, op), strict, known);
      if (t.stop) return { seed, cfg, ops, finding: t.stop, at: i, known, endedBy: t.by };
    }
  } finally {
    try {
      s.dispose();
    } catch {
      /* a world that cannot be torn down after a finding is not a second finding */
    }
  }
  return { seed, cfg, ops, finding: null, at: -1, known, endedBy: null };
}

/** Replays concrete calls on a fresh world; the first finding (known-open ones skipped as in the campaign) and its call index. */
export function replayOps<C>(target: Target<C>, cfg: C, ops: Op[], strict = false): { finding: Finding | null; at: number } {
  const s = target.open(cfg);
  const known: Record<string, number> = {};
  try {
    for (let i = 0; i < ops.length; i++) {
      const t = triage(target.name, runStep(s, ops[i]), strict, known);
      if (t.stop) return { finding: t.stop, at: i };
    }
  } finally {
    try {
      s.dispose();
    } catch {
      /* see runEpisode */
    }
  }
  return { finding: null, at: -1 };
}

/**
 * Delta debugging (ddmin) over the call list: drops chunks of calls while a replay still
 * ends in a finding of the same signature. `budget` bounds the replays.
 */
export function minimise<C>(target: Target<C>, cfg: C, ops: Op[], finding: Finding, budget = 400, strict = false, timeMs = 15_000): Op[] {
  const sig = signature(finding);
  let replays = 0;
  const stopAt = Date.now() + timeMs;
  const fails = (cand: Op[]): boolean => {
    replays++;
    if (Date.now() > stopAt) replays = budget;
    const r = replayOps(target, cfg, cand, strict);
    return r.finding !== null && signature(r.finding) === sig;
  };
  let cur = ops;
  let n = 2;
  while (cur.length >= 2 && replays < budget) {
    const chunk = Math.ceil(cur.length / n);
    let reduced = false;
    for (let i = 0; i < cur.length && replays < budget; i += chunk) {
      const cand = [...cur.slice(0, i), ...cur.slice(i + chunk)];
      if (cand.length && fails(cand)) {
        cur = cand;
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (chunk === 1) break;
      n = Math.min(cur.length, n * 2);
    }
  }
  // Trim the calls after the failing one.
  const r = replayOps(target, cfg, cur, strict);
  return r.finding ? cur.slice(0, r.at + 1) : cur;
}

/** A finding of a campaign, minimised. */
export interface Report<C = unknown> {
  signature: string;
  finding: Finding;
  known: KnownOpen | null;
  seed: number;
  cfg: C;
  ops: Op[];
  count: number;
}

/** Options of a campaign. */
export interface CampaignOptions {
  seed: number;
  /** Stop after this many calls (count bound: deterministic). */
  calls?: number;
  /** Stop after this many milliseconds. */
  timeMs?: number;
  /** Calls per episode. */
  episodeLen?: number;
  /** Minimise findings (default true). */
  minimise?: boolean;
  /** Treat KNOWN_OPEN entries as findings too (default false: they are counted, not failed). */
  strict?: boolean;
  /** Called for each new finding signature (after minimisation). */
  onReport?: (r: Report) => void;
  /** Ends the campaign early when it returns true for a new report. */
  until?: (r: Report) => boolean;
}

/** The result of a campaign. */
export interface CampaignResult {
  target: string;
  calls: number;
  episodes: number;
  ms: number;
  /** Of `ms`, the time spent minimising findings (not fuzzing). */
  minimiseMs: number;
  /** New (not known-open) findings, one per signature. */
  reports: Report[];
  /** Known-open findings hit, by ID: how many calls' checks matched them. */
  knownHits: Record<string, number>;
}

/** Runs episodes until the call or time bound. */
export function campaign<C>(target: Target<C>, o: CampaignOptions): CampaignResult {
  const t0 = Date.now();
  const deadline = o.timeMs === undefined ? Infinity : t0 + o.timeMs;
  const maxCalls = o.calls ?? Infinity;
  const len = o.episodeLen ?? 200;
  const master = new Rng(o.seed);
  const bySig = new Map<string, Report>();
  const knownHits: Record<string, number> = {};
  let calls = 0;
  let episodes = 0;
  let minimiseMs = 0;
  while (calls < maxCalls && Date.now() < deadline) {
    const seed = master.u32();
    const ep = runEpisode(target, seed, Math.min(len, maxCalls - calls), deadline, !!o.strict);
    calls += ep.ops.length;
    episodes++;
    for (const [id, n] of Object.entries(ep.known)) knownHits[id] = (knownHits[id] ?? 0) + n;
    if (!ep.finding || ep.endedBy) continue;
    const sig = signature(ep.finding);
    const prev = bySig.get(sig);
    if (prev) {
      prev.count++;
      continue;
    }
    const tm = Date.now();
    const ops = o.minimise === false ? ep.ops.slice(0, ep.at + 1) : minimise(target, ep.cfg, ep.ops.slice(0, ep.at + 1), ep.finding, 400, !!o.strict);
    const again = replayOps(target, ep.cfg, ops, !!o.strict);
    const rep: Report = { signature: sig, finding: again.finding ?? ep.finding, known: null, seed, cfg: ep.cfg, ops, count: 1 };
    bySig.set(sig, rep);
    minimiseMs += Date.now() - tm;
    o.onReport?.(rep);
    if (o.until?.(rep)) break;
  }
  return { target: target.name, calls, episodes, ms: Date.now() - t0, minimiseMs, reports: [...bySig.values()], knownHits };
}

/** JSON with bigints as {"$big": "0x.."} so reproducers round-trip. */
export function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? { $big: `0x${x.toString(16)}` } : x));
}

/** Inverse of toJson. */
export function fromJson<T>(s: string): T {
  return JSON.parse(s, (_k, x) => (x && typeof x === "object" && typeof x.$big === "string" && Object.keys(x).length === 1 ? BigInt(x.$big) : x)) as T;
}

/** The reproducer of a report: a runnable TS snippet (and the target's extra form). */
export function reproducer(target: Target, r: Report): string {
  const json = toJson({ target: target.name, cfg: r.cfg, ops: r.ops });
  let out =
    `// ${r.finding.kind} after call ${r.ops.length} (${r.finding.op}), episode seed ${r.seed}\n` +
    `// ${r.finding.message.split("\n")[0]}\n` +
    `// Save as repro.ts in the project root and run: npx tsx repro.ts\n` +
    `import { replayRepro } from "./test/fuzz/targets";\n` +
    `const found = replayRepro(${JSON.stringify(json)});\n` +
    `console.log(found ?? "no finding (fixed?)");\n`;
  const extra = target.extraReproducer?.(r.cfg, r.ops);
  if (extra) out += `\n${extra}`;
  return out;
}
