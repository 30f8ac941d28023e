/**
 * Text renderings of a migration for terminals and logs: the scenario header, the
 * per-round progress (a redrawn bar on a TTY, one plain line per round otherwise), the
 * round-by-round table and the verdict.
 */
import type { MigrationObserver, MigrationResult, RoundResult } from "./engine";
import { PAGE_SIZE } from "./layout";
import type { Scenario } from "./scenario";
import { formatByteRate, formatBytes, formatMs, formatRate, formatSeconds } from "./units";

const pagesToBytes = (pages: number): string => formatBytes(pages * PAGE_SIZE);

/** The scenario in a few lines: guest layout, link, limits, devices and their harvest calls. */
export function renderHeader(s: Scenario, result: Pick<MigrationResult, "regions" | "backends">): string {
  const regions = result.regions.map((r) => `${r.name} ${formatBytes(r.bytes)} @ 0x${r.gpa.toString(16)}`).join(", ");
  const lines = [
    `Guest ${formatBytes(s.guestBytes)} (${regions}), ${formatBytes(s.mappingPageSize)} mappings`,
    `Link ${formatRate(s.bandwidth)}, downtime limit ${formatSeconds(s.downtimeLimit)}, stop latency ${formatSeconds(s.stopLatency)}, ` +
      `at most ${s.maxRounds} rounds, ` +
      `bitmap copy ${s.bitmapCopy}, seed ${s.seed}${s.type1Profile ? `, type1 profile ${s.type1Profile}` : ""}`,
  ];
  const width = Math.max(...s.devices.map((d) => d.name.length));
  for (const d of s.devices) {
    const w = d.workload;
    const b = result.backends.find((x) => x.device === d.name);
    const pinned = d.kind === "emulated" ? `, ${formatBytes(d.pinned)} pinned` : "";
    lines.push(
      `  ${d.name.padEnd(width)}  ${d.kind.padEnd(8)}  DMA ${formatByteRate(w.rate)} into ${formatBytes(w.workingSet)} ` +
        `(hot ${formatBytes(w.hotSet)} takes ${Math.round(w.hotFraction * 100)}%), ${formatBytes(w.burst)} bursts${pinned}`,
    );
    const tag = b?.fidelity === "stand-in" ? "  [stand-in backend]" : b?.fidelity === "partial" ? "  [model page tables; ioctl layer not modelled yet]" : "";
    if (b) lines.push(`  ${"".padEnd(width)}  harvest: ${b.harvestCall}${tag}`);
    if (b?.tracking) lines.push(`  ${"".padEnd(width)}  tracking: ${b.tracking}`);
  }
  return lines.join("\n") + "\n";
}

/** Column layout shared by the table header and rows. */
const COLS: ReadonlyArray<[string, number]> = [
  ["round", 5],
  ["phase", 13],
  ["sent", 10],
  ["transfer (sim)", 14],
  ["DMA bursts", 10],
  ["written", 10],
  ["reported", 10],
  ["harvest (wall)", 14],
];

function row(cells: readonly string[]): string {
  return cells.map((c, i) => (i === 1 ? c.padEnd(COLS[i][1]) : c.padStart(COLS[i][1]))).join("  ");
}

/** The extra column of runs whose devices have state of their own. */
const STATE_COL: [string, number] = ["device state", 12];

/** One table row for a round (with a device-state cell when the round has one). */
export function renderRoundRow(r: RoundResult): string {
  const state = r.deviceStateBytes === undefined ? "" : `  ${formatBytes(r.deviceStateBytes).padStart(STATE_COL[1])}`;
  return row([
    String(r.round),
    r.phase,
    pagesToBytes(r.sentPages),
    formatSeconds(r.transferSeconds),
    String(r.bursts),
    pagesToBytes(r.writtenPages),
    pagesToBytes(r.reportedPages),
    formatMs(r.harvestMs),
  ]) + state;
}

/** The round-by-round table, with a legend. */
export function renderTable(result: MigrationResult): string {
  const head = row(COLS.map(([name]) => name)) + (result.deviceState ? `  ${STATE_COL[0].padStart(STATE_COL[1])}` : "");
  const lines = [head, "-".repeat(head.length), ...result.rounds.map(renderRoundRow)];
  lines.push(
    "",
    "sent: pages put on the wire in the round; transfer (sim): simulated time at the link rate (the",
    "stop-and-copy transfer is the downtime); written: pages the devices actually wrote and not yet",
    "sent when the harvest ran; reported: what the harvests returned (sent by the next round);",
    "harvest (wall): measured time of the harvest calls on the model.",
  );
  if (result.deviceState)
    lines.push(
      "device state: the devices' own state on the wire in the round (pre-copy: PRECOPY_INFO's",
      "initial_bytes + dirty_bytes read from the data fd; stop-and-copy: the STOP_COPY stream), counted",
      "in the transfer time.",
    );
  return lines.join("\n") + "\n";
}

/** The verdict, totals and the no-lost-page check. */
export function renderVerdict(result: MigrationResult): string {
  const t = result.totals;
  const s = result.scenario;
  const lines: string[] = [];
  if (result.converged) {
    lines.push(
      `Converged after ${t.precopyRounds} pre-copy round${t.precopyRounds === 1 ? "" : "s"}: downtime ` +
        `${formatSeconds(t.downtimeSeconds)} <= limit ${formatSeconds(s.downtimeLimit)}.`,
    );
  } else {
    lines.push(`Did NOT converge: downtime would be ${formatSeconds(t.downtimeSeconds)} > limit ${formatSeconds(s.downtimeLimit)}.`);
    lines.push(`  Why: ${result.reason}`);
  }
  const ds = result.deviceState;
  if (ds) {
    lines.push(
      `  Downtime = (${formatBytes(ds.downtimeMemoryBytes)} of memory + ${formatBytes(ds.downtimeBytes)} of device state) / ` +
        `${formatRate(s.bandwidth)}: ${ds.dominates} dominates the downtime.`,
      `  Device state: ${formatBytes(ds.precopyBytes)} sent during pre-copy (PRECOPY_INFO), ${formatBytes(ds.downtimeBytes)} in ` +
        `stop-and-copy (STOP_COPY; MIG_DATA_SIZE at switch-over ${formatBytes(ds.dataSizeAtStop)}).`,
    );
  }
  const tracked = result.backends.filter((b) => b.tracking);
  if (tracked.length > 0) {
    const device = tracked.some((b) => b.tracking!.startsWith("device DMA logging"));
    lines.push(
      device
        ? "  Dirty tracking: device DMA logging (QEMU's choice rule: every device supports it)."
        : "  Dirty tracking: the container's IOMMU dirty tracking (QEMU's choice rule: not every device supports DMA logging).",
    );
    if (device) for (const b of tracked) lines.push(`    ${b.device}: ${b.tracking!.replace(/^device DMA logging \(every device supports it\): /, "")}.`);
  }
  lines.push(
    `  Sent ${formatBytes(t.sentBytes)} in ${formatSeconds(t.simulatedSeconds)} of simulated time; ` +
      `harvests took ${formatMs(t.harvestMs)} of wall time; the run took ${formatMs(t.wallMs)}.`,
  );
  if (result.check.ok) {
    lines.push("  No-lost-page check: OK, every page a device wrote was sent after its last write.");
  } else {
    const ex = result.check.examples.map((e) => `0x${e.gpa.toString(16)}`).join(", ");
    lines.push(`  No-lost-page check FAILED: ${result.check.lostPages} written pages were never sent after their last write (e.g. GPA ${ex}).`);
  }
  const standIns = result.backends.filter((b) => b.fidelity === "stand-in").map((b) => b.device);
  if (standIns.length > 0) lines.push(`  Stand-in backends (not the model's subsystems): ${standIns.join(", ")}.`);
  const partial = result.backends.filter((b) => b.fidelity === "partial").map((b) => b.device);
  if (partial.length > 0) lines.push(`  Harvested from the model's page tables without the ioctl layer of their kind (not modelled yet): ${partial.join(", ")}.`);
  return lines.join("\n") + "\n";
}

/** Up one line, to its start, erased: where a redrawn progress line goes. */
const REDRAW = "\x1b[1A\r\x1b[2K";

/**
 * An observer that shows progress: on a TTY a bar redrawn in place per round; otherwise
 * one plain line when each round ends. `columns` gives the terminal's width at each redraw
 * (80 when unknown): a redrawn line never reaches the last column, so it never wraps and
 * the redraw replaces exactly it. Each write ends its line and the next redraw goes back
 * up to it, so the cursor always waits at the start of an empty line: a run stopped at any
 * moment (Ctrl-C kills a synchronous run before any handler could finish the line) leaves
 * the shell's prompt on a line of its own.
 */
export function progressObserver(out: (s: string) => void, isTTY: boolean, columns: () => number | undefined = () => undefined): MigrationObserver {
  let label = "";
  let shown = -1; // last percentage drawn: redraw only when it changes
  let drawn = false; // a bar line of this round is on the screen, above the cursor
  const fit = (line: string): string => {
    const max = Math.max(20, (columns() || 80) - 1);
    return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
  };
  const bar = (f: number): string => {
    const cols = columns() || 80;
    const width = cols >= 80 ? 24 : Math.max(8, Math.floor(cols / 4));
    const full = Math.round(f * width);
    return `[${"#".repeat(full)}${"-".repeat(width - full)}] ${String(Math.floor(f * 100)).padStart(3)}%`;
  };
  const draw = (f: number): void => {
    out(`${drawn ? REDRAW : ""}${fit(`${bar(f)}  ${label}`)}\n`);
    drawn = true;
  };
  return {
    roundStart(round, phase, sentPages, seconds) {
      label =
        phase === "pre-copy"
          ? `round ${String(round).padStart(2)}  sending ${pagesToBytes(sentPages).padStart(9)} (${formatSeconds(seconds)} simulated)`
          : `round ${String(round).padStart(2)}  stop-and-copy: guest stopped, final harvest, ${pagesToBytes(sentPages)} in ${formatSeconds(seconds)} of downtime`;
      shown = 0;
      drawn = false;
      if (isTTY && phase === "pre-copy") draw(0);
    },
    progress(_round, f) {
      const pct = Math.floor(f * 100);
      if (!isTTY || pct === shown) return;
      shown = pct;
      draw(f);
    },
    roundEnd(r) {
      const done =
        r.phase === "pre-copy"
          ? `${label}; devices wrote ${pagesToBytes(r.writtenPages)}, harvest reported ${pagesToBytes(r.reportedPages)} in ${formatMs(r.harvestMs)}` +
            (r.deviceStateBytes === undefined ? "" : `; device state sent ${formatBytes(r.deviceStateBytes)}`)
          : label + (r.deviceStateBytes === undefined ? "" : ` (+ ${formatBytes(r.deviceStateBytes)} of device state)`);
      // The final line of a round is printed whole (it stays; wrapping it is harmless).
      out(`${drawn ? REDRAW : ""}${done}\n`);
      drawn = false;
    },
  };
}
