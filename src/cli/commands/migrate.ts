/**
 * `vfio-sim migrate`: runs a pre-copy live migration over the model and reports rounds,
 * downtime, convergence and the no-lost-page check. Option parsing lives here; the run
 * itself is src/migrate/.
 */
import { statSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { TYPE1_PROFILE_NAMES } from "../../type1/options";
import { PACK_VARIANTS, type PackVariant } from "../../bitmap";
import { WasmCore } from "../../wasm/core";
import { DmaWorkers, concurrentDma } from "../../threads";
import {
  BACKENDS,
  concurrentBackends,
  DEFAULT_STALL_ROUNDS,
  STAND_IN_BACKENDS,
  DEVICE_KINDS,
  PRESETS,
  ADVERSARIAL_PRESETS,
  defaultScenario,
  device,
  formatBytes,
  layoutError,
  runMigration,
  validateScenario,
  type BackendTable,
  type DeviceKind,
  type DeviceSpec,
  type MigrationResult,
  type Scenario,
  type Workload,
} from "../../migrate";
import { renderHtmlReport } from "../../migrate/render-html";
import { progressObserver, renderHeader, renderTable, renderVerdict } from "../../migrate/render-text";
import { parseDuration, parseRate, parseSize } from "../../migrate/units";
import type { CliIo, Command } from "../command";
import { needsValue } from "../options";

const HELP = `Usage: vfio-sim migrate [options]

Runs a pre-copy live migration of a simulated guest whose devices DMA into its memory.
Round 1 sends all RAM while the devices write; each later round re-sends what the dirty
harvest reported, until the rest fits in the downtime limit; then stop-and-copy. Every
run ends with a check that no page a device wrote was lost. With no options it runs the
built-in scenario: ${PRESETS.default.summary}, 64 GiB guest.

Scenario:
  --scenario NAME        device line-up (default: default):
${Object.entries(PRESETS)
  .map(([k, v]) => `                           ${k.padEnd(12)} ${v.summary}`)
  .join("\n")}
  --naive                adversarial scenarios only: play the flawed VMM (the default is
                         the fixed one); the no-lost-page check must catch it (exit 1)
  --guest SIZE           guest RAM, at most 1T (default 64G); RAM above 3G is mapped at 4G
  --page-size SIZE       host page backing RAM = IOMMU leaf size: 4K, 2M or 1G (default 4K)
  --device SPEC          a device (repeatable; replaces the scenario's devices):
                           KIND[:NAME][,rate=RATE][,ws=SIZE][,hot=SIZE][,hotfrac=F]
                               [,burst=SIZE][,pinned=SIZE]
                         KIND is one of:
${Object.entries(DEVICE_KINDS)
  .map(([k, v]) => `                           ${k.padEnd(9)} ${v}`)
  .join("\n")}

Workload (for every device; keys in --device override per device):
  --rate RATE            DMA bytes written per second (e.g. 800MB/s)
  --working-set SIZE     memory the device writes into, in 2 MiB chunks over RAM
  --hot-set SIZE         part of the working set that takes --hot-fraction of the writes
  --hot-fraction F       locality: share of writes that hit the hot set (0..1)
  --burst SIZE           bytes per DMA write, contiguous pages (4K..2M)

Link and limits:
  --bandwidth RATE       link rate for guest pages (default 10Gbit; also 1.25GB/s)
  --downtime TIME        downtime limit (default 300ms)
  --stop-latency TIME    devices keep writing this long after the last pre-copy harvest
                         while the guest is being stopped (default 10ms)
  --max-rounds N         pre-copy rounds before stop-and-copy is forced (default 30)
  --stall-rounds N       stop pre-copy when the remainder has not shrunk for N rounds
                         (default ${DEFAULT_STALL_ROUNDS}; 0 = never)

Harvest and output:
  --bitmap-copy V        type1 user-bitmap copy: byte, word (Linux, default) or simd
  --profile P            kernel the type1 containers model: linux-6.1 (default),
                         linux-6.12 or mainline (see README, type1 profiles)
  --seed N               workload seed (default 1)
  --stand-ins            use the interim stand-in backend for every device kind instead of
                         the model's subsystems (faster; same dirty pages, see README)
  --workers N            run the DMA of iommufd devices in N worker threads on a shared
                         Wasm core while this thread harvests (per-PTE atomic harvest);
                         other kinds stay on the main thread (default: no workers)
  --json                 print the result as JSON on stdout (no progress, no table)
  --report FILE.html     also write a self-contained HTML report with charts
  -h, --help             show this help

Options take their value as --guest 8G or --guest=8G.
Times: simulated transfer time and measured harvest wall time are reported apart.
Exit status: 0 the run completed and lost no page (converged or not), or the VMM blocked
the migration up front (huge-guest); 1 a page was lost or a model call failed; 2 bad options.
`;

/** Thrown inside option parsing only; becomes exit status 2. */
class UsageError extends Error {}

interface Parsed {
  scenario: Scenario;
  /** What the command changed that the user did not ask for (printed on stderr). */
  notes: string[];
  json: boolean;
  standIns: boolean;
  report: string | null;
  stallRounds: number;
  workers: number;
}

const DEVICE_KEYS = ["rate", "ws", "hot", "hotfrac", "burst", "pinned"] as const;

function need<T>(v: T | null, what: string, text: string): T {
  if (v === null) throw new UsageError(`bad ${what}: '${text}'`);
  return v;
}

function parseFraction(text: string): number | null {
  const v = Number(text);
  return text.trim() !== "" && Number.isFinite(v) ? v : null;
}

function parseInteger(text: string): number | null {
  return /^\d+$/.test(text.trim()) ? Number(text) : null;
}

/** Parses one `--device` spec into its kind, name and per-device overrides. */
function parseDevice(spec: string, index: number): { kind: DeviceKind; name: string; over: Partial<Workload>; pinned?: number } {
  const [head, ...kv] = spec.split(",");
  const [kindText, nameText] = head.split(":");
  if (!(kindText in DEVICE_KINDS)) throw new UsageError(`unknown device kind '${kindText}' (one of: ${Object.keys(DEVICE_KINDS).join(", ")})`);
  const kind = kindText as DeviceKind;
  const name = nameText ?? `${kind === "emulated" ? "emu" : "dev"}${index}`;
  if (!/^[A-Za-z0-9_.-]{1,32}$/.test(name)) throw new UsageError(`bad device name '${name}'`);
  const over: { -readonly [K in keyof Workload]?: Workload[K] } = {};
  let pinned: number | undefined;
  for (const item of kv) {
    const eq = item.indexOf("=");
    const key = eq < 0 ? item : item.slice(0, eq);
    const val = eq < 0 ? "" : item.slice(eq + 1);
    if (!(DEVICE_KEYS as readonly string[]).includes(key)) throw new UsageError(`unknown device key '${key}' in '${spec}' (keys: ${DEVICE_KEYS.join(", ")})`);
    switch (key) {
      case "rate":
        over.rate = need(parseRate(val), "rate", val);
        break;
      case "ws":
        over.workingSet = need(parseSize(val), "working set", val);
        break;
      case "hot":
        over.hotSet = need(parseSize(val), "hot set", val);
        break;
      case "hotfrac":
        over.hotFraction = need(parseFraction(val), "hot fraction", val);
        break;
      case "burst":
        over.burst = need(parseSize(val), "burst", val);
        break;
      case "pinned":
        if (kind !== "emulated") throw new UsageError(`pinned= applies to emulated devices only`);
        pinned = need(parseSize(val), "pinned size", val);
        break;
    }
  }
  return { kind, name, over, pinned };
}

/**
 * Shrinks the defaults a user did not set so they fit a small guest: a working set of at
 * most half the guest (in whole 2 MiB chunks), a hot set inside it, pinned rings inside
 * that. Values the user gave are left alone (validation reports them).
 */
function fitDefaults(d: DeviceSpec, explicit: Partial<Workload>, pinnedGiven: boolean, guestBytes: number | null, shrunk: string[]): DeviceSpec {
  if (guestBytes === null || !(guestBytes > 0)) return d;
  const w = { ...d.workload };
  if (explicit.workingSet === undefined && w.workingSet > guestBytes / 2) shrunk.push(`${d.name} ${formatBytes(w.workingSet)} -> ${formatBytes(Math.max(4096, Math.floor(guestBytes / 2 / 2 ** 21) * 2 ** 21))}`);
  if (explicit.workingSet === undefined && w.workingSet > guestBytes / 2) w.workingSet = Math.max(4096, Math.floor(guestBytes / 2 / 2 ** 21) * 2 ** 21);
  if (explicit.hotSet === undefined && w.hotSet > w.workingSet) w.hotSet = w.workingSet;
  const pinned = !pinnedGiven && d.pinned > w.hotSet ? Math.floor(w.hotSet / 4096) * 4096 : d.pinned;
  return { ...d, workload: w, pinned };
}

/** Parses argv into a scenario; throws UsageError on anything malformed. */
function parse(argv: readonly string[]): Parsed | "help" {
  const opts = new Map<string, string>();
  const devices: string[] = [];
  let json = false;
  let standIns = false;
  let naive = false;
  const valued = new Set([
    "--scenario",
    "--guest",
    "--page-size",
    "--device",
    "--rate",
    "--working-set",
    "--hot-set",
    "--hot-fraction",
    "--burst",
    "--bandwidth",
    "--downtime",
    "--stop-latency",
    "--max-rounds",
    "--stall-rounds",
    "--bitmap-copy",
    "--profile",
    "--seed",
    "--report",
    "--workers",
  ]);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "-h" || arg === "--help") return "help";
    if (arg === "--json") {
      json = true;
      continue;
    }
    if (arg === "--stand-ins") {
      standIns = true;
      continue;
    }
    if (arg === "--naive") {
      naive = true;
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    if (name === "--json" || name === "--stand-ins" || name === "--help") throw new UsageError(`option ${name} takes no value`);
    if (!valued.has(name)) throw new UsageError(arg.startsWith("-") ? `unknown option '${arg}'` : `unexpected argument '${arg}'`);
    let value: string;
    if (eq > 0 && arg.startsWith("--")) value = arg.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new UsageError(needsValue(name));
      value = argv[++i];
    }
    if (name === "--device") devices.push(value);
    else if (opts.has(name)) throw new UsageError(`option ${name} given twice`);
    else opts.set(name, value);
  }

  const preset = opts.get("--scenario") ?? "default";
  if (!(preset in PRESETS)) throw new UsageError(`unknown scenario '${preset}' (one of: ${Object.keys(PRESETS).join(", ")})`);
  const base = defaultScenario(preset);
  if (naive && !base.adversary) throw new UsageError(`--naive needs an adversarial scenario (${ADVERSARIAL_PRESETS.join(", ")})`);
  if (standIns && base.adversary) throw new UsageError(`scenario '${preset}' needs the model's backends (not --stand-ins)`);
  const get = <T>(name: string, parseFn: (t: string) => T | null, what: string, dflt: T): T => {
    const t = opts.get(name);
    return t === undefined ? dflt : need(parseFn(t), what, t);
  };

  const global: { -readonly [K in keyof Workload]?: Workload[K] } = {};
  if (opts.has("--rate")) global.rate = get("--rate", parseRate, "rate", 0);
  if (opts.has("--working-set")) global.workingSet = get("--working-set", parseSize, "working set", 0);
  if (opts.has("--hot-set")) global.hotSet = get("--hot-set", parseSize, "hot set", 0);
  if (opts.has("--hot-fraction")) global.hotFraction = get("--hot-fraction", parseFraction, "hot fraction", 0);
  if (opts.has("--burst")) global.burst = get("--burst", parseSize, "burst", 0);

  const guestBytes = get("--guest", parseSize, "guest size", base.guestBytes);
  const mappingPageSize = get("--page-size", parseSize, "page size", base.mappingPageSize);
  // A guest that cannot be laid out is the one mistake: the checks that measure the
  // devices' working sets against it would only repeat it.
  if (!(guestBytes >= 4096)) throw new UsageError(`guest size must be at least 4K, got '${opts.get("--guest")}'`);
  const layout = layoutError(guestBytes, mappingPageSize);
  if (layout) throw new UsageError(layout);
  const shrunk: string[] = [];
  let specs: DeviceSpec[];
  if (devices.length > 0) {
    specs = devices.map((d, i) => {
      const p = parseDevice(d, i);
      const explicit = { ...global, ...p.over };
      return fitDefaults(device(p.kind, p.name, explicit, p.pinned), explicit, p.pinned !== undefined, guestBytes, shrunk);
    });
  } else {
    specs = base.devices.map((d) => fitDefaults({ ...d, workload: { ...d.workload, ...global } }, global, false, guestBytes, shrunk));
  }
  const notes =
    shrunk.length === 0
      ? []
      : [
          `default working sets shrunk to fit the ${formatBytes(guestBytes)} guest (at most half of it each): ${shrunk.join(", ")}; ` +
            `hot sets and pinned rings within them; --working-set and --hot-set (or ws= and hot= in --device) choose them`,
        ];

  const copy = opts.get("--bitmap-copy") ?? base.bitmapCopy;
  if (!(PACK_VARIANTS as readonly string[]).includes(copy)) throw new UsageError(`bad --bitmap-copy '${copy}' (byte, word or simd)`);
  const profileName = opts.get("--profile");
  const type1Profile = profileName === undefined ? undefined : TYPE1_PROFILE_NAMES.find((p) => p === profileName);
  if (profileName !== undefined && type1Profile === undefined) throw new UsageError(`unknown --profile '${profileName}' (${TYPE1_PROFILE_NAMES.join(", ")})`);
  const scenario: Scenario = {
    guestBytes,
    mappingPageSize,
    devices: specs,
    bandwidth: get("--bandwidth", parseRate, "bandwidth", base.bandwidth),
    downtimeLimit: get("--downtime", parseDuration, "downtime", base.downtimeLimit),
    stopLatency: get("--stop-latency", parseDuration, "stop latency", base.stopLatency),
    maxRounds: get("--max-rounds", parseInteger, "max rounds", base.maxRounds),
    bitmapCopy: copy as PackVariant,
    ...(type1Profile ? { type1Profile } : {}),
    seed: get("--seed", parseInteger, "seed", base.seed),
    ...(base.adversary ? { adversary: { ...base.adversary, naive } } : {}),
  };
  const errs = validateScenario(scenario);
  if (errs.length > 0) throw new UsageError(errs.join("; "));
  const stallRounds = get("--stall-rounds", parseInteger, "stall rounds", DEFAULT_STALL_ROUNDS);
  const workers = get("--workers", parseInteger, "worker count", 0);
  if (opts.has("--workers") && !(workers >= 1 && workers <= 16)) throw new UsageError(`--workers takes 1..16, got ${workers}`);
  if (workers > 0 && standIns) throw new UsageError("--workers runs the model's iommufd devices; it does not combine with --stand-ins");
  const report = opts.get("--report") ?? null;
  if (report !== null) checkReportPath(report);
  return { scenario, notes, json, standIns, report, stallRounds, workers };
}

/** Fails before the run, not after it, when the report cannot be written where asked. */
function checkReportPath(file: string): void {
  if (file === "") throw new UsageError("--report needs a file name");
  const dir = dirname(resolve(file));
  const st = statSync(dir, { throwIfNoEntry: false });
  if (!st) throw new UsageError(`cannot write report '${file}': directory '${dirname(file)}' does not exist`);
  if (!st.isDirectory()) throw new UsageError(`cannot write report '${file}': '${dirname(file)}' is not a directory`);
  if (statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`cannot write report '${file}': it is a directory`);
}

/** The JSON document `--json` prints. */
export function resultJson(result: MigrationResult): string {
  return JSON.stringify({ schema: "vfio-sim.migrate/1", ...result }, null, 2) + "\n";
}

/**
 * Runs the command. `backends` replaces the device backends (tests inject faulty ones);
 * the CLI always uses the default table.
 */
export function runMigrateCommand(argv: readonly string[], io: CliIo, backends?: BackendTable): number {
  let parsed: Parsed | "help";
  try {
    parsed = parse(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`vfio-sim migrate: ${e.message}\nTry 'vfio-sim migrate --help'.\n`);
    return 2;
  }
  if (parsed === "help") {
    io.out(HELP);
    return 0;
  }
  const { scenario, notes, json, report, stallRounds, standIns, workers } = parsed;
  for (const n of notes) io.err(`vfio-sim migrate: note: ${n}\n`);
  const progress = progressObserver(io.out, io.isTTY, () => io.columns);
  // Workers instantiate the shared core before anything runs on it (src/wasm/core.ts).
  const shared = workers > 0 ? WasmCore.createShared() : null;
  const pool = shared ? new DmaWorkers(shared, workers) : null;
  const run = runMigration(scenario, {
    backends: backends ?? (shared ? concurrentBackends(shared) : standIns ? STAND_IN_BACKENDS : BACKENDS),
    ...(pool ? { dma: concurrentDma(pool) } : {}),
    stallRounds,
    observer: json
      ? undefined
      : {
          ...progress,
          begin(info) {
            io.out(`vfio-sim migrate: pre-copy live migration over the model\n${renderHeader(scenario, info)}\n`);
          },
        },
  });
  void pool?.terminate();
  if ("failure" in run) {
    if (run.failure.blocker) {
      // The fixed VMM refuses up front, as QEMU's migration blocker does: nothing is lost.
      if (json) io.out(JSON.stringify({ schema: "vfio-sim.migrate/1", scenario, blocker: run.failure }, null, 2) + "\n");
      else io.out(`vfio-sim migrate: ${run.failure.device}: ${run.failure.message}\n`);
      return 0;
    }
    io.err(`vfio-sim migrate: ${run.failure.message}\n`);
    return 1;
  }
  const result = run.result;
  if (json) io.out(resultJson(result));
  else io.out(`\n${renderTable(result)}\n${renderVerdict(result)}`);
  if (report) {
    try {
      writeFileSync(report, renderHtmlReport(result));
      if (!json) io.out(`  Report: ${report}\n`);
    } catch (e) {
      io.err(`vfio-sim migrate: cannot write report '${report}': ${(e as Error).message}\n`);
      return 1;
    }
  }
  if (!result.check.ok) {
    io.err(
      `vfio-sim migrate: LOST DIRTY PAGES: ${result.check.lostPages} pages written by a device were never sent after their last write; ` +
        `a harvest dropped dirty bits\n`,
    );
    return 1;
  }
  return 0;
}

export const migrateCommand: Command = {
  name: "migrate",
  summary: "run a pre-copy live migration of a guest with DMA-capable devices (start here)",
  run: (argv, io) => runMigrateCommand(argv, io),
};
