/**
 * `vfio-sim live-update`: the vhost-vdpa live-update flow of the 2024 RFC (seed 004) on
 * the model, step by step: two simulated VMM processes share guest RAM through a memfd,
 * the new one takes the device (VHOST_NEW_OWNER) and REMAPs every IOTLB entry to its own
 * addresses in one batch, the old one exits, and a device writes into guest RAM
 * throughout. Prints each step, the translations before and after, where device writes
 * landed, and the ledger check (every byte where the guest layout says it belongs).
 */
import type { CliIo, Command } from "../command";
import { OptionCursor, needsValue } from "../options";
import { DEFAULT_LAYOUT, LiveDevice, LiveUpdateWorld, type GuestRegion, type StepResult, type Vmm } from "../../vhost/live-update";
import { VhostAccess } from "../../uapi/vhost";

/** The flows the command can run: the RFC's, or one of its failure paths. */
export const SCENARIOS = ["ok", "no-suspend", "remap-mismatch", "wrong-remap", "old-exits-early", "short-mapping"] as const;
export type Scenario = (typeof SCENARIOS)[number];

const USAGE = `usage: vfio-sim live-update [--scenario NAME] [--seed N] [--writes N] [--json]

Runs the vhost-vdpa live-update flow of the 2024 RFC on the model: the old VMM maps guest
RAM (a memfd, MAP_SHARED) into the device's IOTLB; a new VMM process receives the memfd and
the device fd (SCM_RIGHTS), maps the memfd at other addresses, takes the device with
VHOST_NEW_OWNER and REMAPs every entry in one batch (BATCH_BEGIN, REMAP..., BATCH_END);
the old VMM exits. A device writes into guest RAM at every step; a ledger that knows where
each byte belongs from the guest layout alone checks guest RAM at the end.

VHOST_NEW_OWNER and VHOST_IOTLB_REMAP were never merged into Linux: the model has them
only as opt-in options (VhostVdpa { newOwner, remap }), and this command turns them on.

Options:
  --scenario NAME   ok (default): the RFC's flow, device suspended around the hand-over
                    no-suspend: the device keeps writing after NEW_OWNER; the new VMM has
                      other memory at the old addresses, so writes go there (misdirected)
                    remap-mismatch: REMAPs with a wrong size or start are refused (EFAULT)
                      and change nothing; the correct ones follow
                    wrong-remap: one REMAP points at the wrong guest memory; the kernel
                      cannot tell, the ledger can
                    old-exits-early: the old VMM exits in the middle of the batch
                    short-mapping: the new VMM maps only part of guest RAM; writes past it
                      fault and are held until it maps the rest
  --seed N          seed of the device's writes (default 1)
  --writes N        device writes issued at each step (default 8)
  --json            one JSON object (schema vfio-sim.live-update/1) instead of text
  -h, --help        show this help
Options take their value as --seed 2 or --seed=2.

Exit status: 0 every device write landed where it belongs, 1 a byte was lost or stray or a
write is still held (the failure scenarios that corrupt memory end so), 2 bad options.
`;

/** One step of the flow as printed. */
export interface LiveStep {
  readonly what: string;
  readonly result: string;
  /** Device writes done / held after the step. */
  readonly done: number;
  readonly held: number;
}

/** One region's translation before and after. */
export interface LiveTranslation {
  readonly iova: string;
  readonly size: number;
  readonly perm: string;
  readonly before: string | null;
  readonly after: string | null;
  readonly device: string | null;
}

/** What a run found. */
export interface LiveUpdateResult {
  readonly scenario: Scenario;
  readonly seed: number;
  readonly oldVmm: { pid: number; base: string };
  readonly newVmm: { pid: number; base: string; mapped: number };
  readonly steps: LiveStep[];
  readonly translations: LiveTranslation[];
  readonly sample: { iova: string; offset: string; newAddress: string; bytes: string; reads: string } | null;
  readonly writes: { issued: number; done: number; held: number; faults: number; bytes: number };
  readonly check: { lost: number; stray: number; pending: number };
  readonly ok: boolean;
}

const hex = (x: bigint | number): string => `0x${x.toString(16)}`;
const PERM: Record<number, string> = { [VhostAccess.RO]: "RO", [VhostAccess.WO]: "WO", [VhostAccess.RW]: "RW" };
const show = (r: StepResult): string => (r.ok ? "ok" : `-1 ${r.errnoName}`);

/** Runs one scenario of the flow. */
export function runLiveUpdate(scenario: Scenario, seed = 1, writes = 8): LiveUpdateResult {
  const w = new LiveUpdateWorld();
  const dev = new LiveDevice(w, seed);
  const steps: LiveStep[] = [];
  const step = (what: string, result = "ok") => steps.push({ what, result, done: dev.done, held: dev.pending.length });
  const all = (v: Vmm, f: (r: GuestRegion) => StepResult): string => DEFAULT_LAYOUT.map((r) => show(f(r))).join(", ");

  dev.tick(writes);
  step(`old VMM: memfd MAP_SHARED, SET_OWNER, UPDATE x${DEFAULT_LAYOUT.length} in a batch`);
  const before = w.translations();
  const next = w.spawnNew(scenario === "short-mapping" ? 0xd0000 : undefined);
  dev.tick(writes);
  step(`new VMM: fds by SCM_RIGHTS; mmap ${hex(next.mapped)} bytes at ${hex(next.base)}`);
  if (scenario === "no-suspend") {
    const r = next.p.mmap(w.old.base, w.ramSize);
    step(`new VMM: anonymous memory at the old VMM's guest address ${hex(w.old.base)}`, r.errno === 0 ? "ok" : `-1 errno ${r.errno}`);
  } else {
    dev.suspend();
    step("device suspended (it holds its writes)");
  }
  step("new VMM: VHOST_NEW_OWNER", show(w.newOwner(next)));
  dev.tick(writes);
  step("device keeps issuing writes", dev.suspended ? "held" : "issued");
  step("new VMM: BATCH_BEGIN", show(w.batchBegin(next)));
  if (scenario === "remap-mismatch") {
    const r1 = DEFAULT_LAYOUT[1];
    step(`new VMM: REMAP iova ${hex(r1.iova)} with half the size`, show(w.remap(next, r1, next.base + BigInt(r1.offset), BigInt(r1.size) / 2n)));
    step(`new VMM: REMAP iova ${hex(r1.iova + 0x1000n)} (inside the entry)`, show(w.remap(next, { ...r1, iova: r1.iova + 0x1000n })));
  }
  if (scenario === "wrong-remap") {
    const [r0, r1] = DEFAULT_LAYOUT;
    step(`new VMM: REMAP x${DEFAULT_LAYOUT.length}, iova ${hex(r1.iova)} to memfd offset ${hex(r0.offset)} (wrong)`, all(next, (r) => (r === r1 ? w.remap(next, r, next.base + BigInt(r0.offset)) : w.remap(next, r))));
  } else if (scenario === "old-exits-early") {
    const [first, ...rest] = DEFAULT_LAYOUT;
    step("new VMM: REMAP x1", show(w.remap(next, first)));
    w.exitOld();
    step("old VMM exits (device and memfd stay open in the new VMM)");
    step(`new VMM: REMAP x${rest.length}`, rest.map((r) => show(w.remap(next, r))).join(", "));
  } else {
    step(`new VMM: REMAP x${DEFAULT_LAYOUT.length}`, all(next, (r) => w.remap(next, r)));
  }
  step("new VMM: BATCH_END (one set_map to the parent)", show(w.batchEnd(next)));
  if (dev.suspended) {
    dev.resume();
    step("device resumed");
  }
  if (scenario !== "old-exits-early") {
    w.exitOld();
    step("old VMM exits");
  }
  dev.tick(writes * 4);
  step("device keeps writing");
  if (scenario === "short-mapping") {
    step("new VMM: maps the rest of guest RAM", show(w.mapRest(next)));
    dev.flush();
    step("device retries its held writes");
  }

  const after = w.translations();
  const translations = DEFAULT_LAYOUT.map((r, i) => ({
    iova: `${hex(r.iova)}-${hex(r.iova + BigInt(r.size) - 1n)}`,
    size: r.size,
    perm: PERM[r.perm] ?? String(r.perm),
    before: before[i].iotlb === null ? null : hex(before[i].iotlb!),
    after: after[i].iotlb === null ? null : hex(after[i].iotlb!),
    device: after[i].device === null ? null : hex(after[i].device!),
  }));
  // The last write done, as the new VMM sees it through its own mapping.
  let sample: LiveUpdateResult["sample"] = null;
  const lastDone = [...dev.issued].reverse().find((x) => !dev.pending.includes(x));
  if (lastDone !== undefined && next.p.mm !== null) {
    const n = Math.min(8, lastDone.data.length);
    const addr = next.base + BigInt(lastDone.offset);
    const got = lastDone.offset + n <= next.mapped ? next.p.read(addr, n) : null;
    const bytes = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
    sample = { iova: hex(lastDone.iova), offset: hex(lastDone.offset), newAddress: hex(addr), bytes: bytes(lastDone.data.subarray(0, n)), reads: got === null ? "(not mapped)" : bytes(got) };
  }
  const check = dev.check();
  return {
    scenario,
    seed,
    oldVmm: { pid: w.old.p.pid, base: hex(w.old.base) },
    newVmm: { pid: next.p.pid, base: hex(next.base), mapped: next.mapped },
    steps,
    translations,
    sample,
    writes: { issued: dev.issued.length, done: dev.done, held: dev.pending.length, faults: dev.faults.length, bytes: dev.ledgerBytes },
    check,
    ok: check.lost === 0 && check.stray === 0 && check.pending === 0,
  };
}

/** The text report of a run. */
export function formatLiveUpdate(r: LiveUpdateResult): string {
  const lines: string[] = [];
  lines.push(`vfio-sim live-update: vhost-vdpa live update over the model (scenario ${r.scenario}, seed ${r.seed})`);
  lines.push("VHOST_NEW_OWNER and VHOST_IOTLB_REMAP are the 2024 RFC's, not Linux's: opt-in options of the model, on here.");
  lines.push(`Guest RAM: a 1 MiB memfd; old VMM pid ${r.oldVmm.pid} maps it at ${r.oldVmm.base}, new VMM pid ${r.newVmm.pid} at ${r.newVmm.base}.`);
  lines.push("");
  lines.push(`  #  ${"step".padEnd(68)} ${"result".padEnd(14)} writes done/held`);
  r.steps.forEach((s, i) => {
    lines.push(`${String(i + 1).padStart(3)}  ${s.what.padEnd(68)} ${s.result.padEnd(14)} ${s.done}/${s.held}`);
  });
  lines.push("");
  lines.push("Translations (IOVA -> user address in the owner's mm):");
  lines.push("  iova                         size      perm  before (old VMM)   after (new VMM)    device uses");
  for (const t of r.translations) {
    lines.push(`  ${t.iova.padEnd(28)} ${(t.size / 1024 + " KiB").padEnd(9)} ${t.perm.padEnd(5)} ${(t.before ?? "-").padEnd(18)} ${(t.after ?? "-").padEnd(18)} ${t.device ?? "-"}`);
  }
  lines.push("");
  if (r.sample !== null) {
    lines.push(`Last device write: iova ${r.sample.iova} = memfd offset ${r.sample.offset}; wrote ${r.sample.bytes}`);
    lines.push(`  the new VMM reads at ${r.sample.newAddress}: ${r.sample.reads}`);
  }
  const w = r.writes;
  lines.push(`Device writes: ${w.issued} issued, ${w.done} done, ${w.held} held, ${w.faults} DMA faults; ${w.bytes} bytes of guest RAM written.`);
  const c = r.check;
  lines.push(
    `Ledger check: ${c.lost} bytes lost, ${c.stray} stray, ${c.pending} writes held -> ${r.ok ? "OK, every byte the device wrote is where the guest layout puts it" : "FAILED"}.`,
  );
  return lines.join("\n") + "\n";
}

export const liveUpdateCommand: Command = {
  name: "live-update",
  summary: "the vhost-vdpa live-update flow (RFC NEW_OWNER + REMAP) with a device writing throughout",
  run(argv: readonly string[], io: CliIo): number {
    let scenario: Scenario = "ok";
    let seed = 1;
    let writes = 8;
    let json = false;
    const args = new OptionCursor(argv);
    for (let w = args.next(); w !== null; w = args.next()) {
      const a = w.name;
      if (a === "-h" || a === "--help") {
        io.out(USAGE);
        return 0;
      } else if (a === "--scenario") {
        const v = args.value();
        if (v === null) return usage(io, needsValue(a));
        if (!(SCENARIOS as readonly string[]).includes(v)) return usage(io, `unknown scenario '${v}' (${SCENARIOS.join(", ")})`);
        scenario = v as Scenario;
      } else if (a === "--seed" || a === "--writes") {
        const v = args.value();
        if (v === null) return usage(io, needsValue(a));
        const n = /^\d+$/.test(v) ? Number(v) : NaN;
        if (!Number.isSafeInteger(n) || (a === "--writes" && (n < 1 || n > 10000))) return usage(io, `bad ${a}: ${v}`);
        if (a === "--seed") seed = n;
        else writes = n;
      } else if (a === "--json") {
        if (w.inline !== undefined) return usage(io, `option ${a} takes no value`);
        json = true;
      } else {
        return usage(io, `unknown argument: ${a}`);
      }
    }
    const r = runLiveUpdate(scenario, seed, writes);
    io.out(json ? JSON.stringify({ schema: "vfio-sim.live-update/1", ...r }, null, 2) + "\n" : formatLiveUpdate(r));
    return r.ok ? 0 : 1;
  },
};

function usage(io: CliIo, msg: string): number {
  io.err(`vfio-sim live-update: ${msg}\nTry 'vfio-sim live-update --help'.\n`);
  return 2;
}
