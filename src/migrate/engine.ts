/**
 * The pre-copy round engine. Round 1 sends all guest RAM while the devices keep writing;
 * each later round re-sends what the harvest reported dirty during the previous one, until
 * the remainder fits in the downtime limit (or rounds run out, or the remainder stops
 * shrinking); then the devices stop, a final harvest runs and the rest is sent during
 * downtime (stop-and-copy).
 *
 * Two clocks, reported apart: simulated time (page transfer at the link bandwidth; DMA
 * happens during it) and measured wall time of the harvest calls on the model.
 *
 * A ledger independent of every harvester checks the run: a page a device wrote is owed
 * until a send that starts after the write; at the end nothing may be owed. Sends are
 * taken to happen at the start of their round, before that round's writes, which is the
 * strict reading (a write during a round always needs a later round).
 */
import { Bitmap, bitmapBytes } from "../bitmap";
import { Errno, errnoName } from "../uapi/errno";
import { WasmCore, type CoreInput } from "../wasm/core";
import type { BackendTable, ConcurrentBatch, ConcurrentDma, DeviceBackend, DeviceStateMover, Fidelity, HarvestSink } from "./backend";
import { BACKENDS } from "./backends";
import { GuestLayout, PAGE_SIZE } from "./layout";
import type { DeviceKind, Scenario } from "./scenario";
import { DmaWorkload, type DmaBurst } from "./workload";

/** One device's part of a round. */
export interface DeviceRound {
  readonly device: string;
  readonly kind: DeviceKind;
  /** DMA bursts the device issued during the round. */
  readonly bursts: number;
  /** Pages its harvest reported dirty. */
  readonly reportedPages: number;
  /** Measured wall time of its harvest call(s), milliseconds. */
  readonly harvestMs: number;
}

/** One pre-copy round, or the final stop-and-copy. */
export interface RoundResult {
  /** 1-based; the stop-and-copy round is numbered after the last pre-copy round. */
  readonly round: number;
  readonly phase: "pre-copy" | "stop-and-copy";
  /** Pages sent in this round (at its start). */
  readonly sentPages: number;
  /** Simulated seconds the send takes at the link bandwidth (downtime for stop-and-copy). */
  readonly transferSeconds: number;
  /** DMA bursts issued during the round, all devices (stop-and-copy: during the stop latency). */
  readonly bursts: number;
  /** Ground truth: distinct pages written and not yet sent when the harvest ran. */
  readonly writtenPages: number;
  /** Union of what the harvests reported: the pages the next round sends. */
  readonly reportedPages: number;
  /** Measured wall time of all harvests of the round, milliseconds. */
  readonly harvestMs: number;
  readonly devices: readonly DeviceRound[];
  /**
   * Device state sent in the round (devices with state of their own, e.g. `mlx5`): pre-copy,
   * what PRECOPY_INFO announced (initial_bytes + dirty_bytes) and was read from the data fd;
   * stop-and-copy, the STOP_COPY stream. On the wire with the pages: `transferSeconds`
   * includes it. Absent when no device has state.
   */
  readonly deviceStateBytes?: number;
}

/** Why pre-copy ended. */
export type StopCause = "fits-downtime" | "max-rounds" | "stalled";

/** The no-lost-dirty-page check. */
export interface LedgerCheck {
  readonly ok: boolean;
  /** Pages written by a device and never sent after their last write. */
  readonly lostPages: number;
  /** Up to 8 of them, as RAM page and guest-physical address. */
  readonly examples: ReadonlyArray<{ readonly page: number; readonly gpa: number }>;
}

/** A backend as the result describes it. */
export interface BackendInfo {
  readonly device: string;
  readonly kind: DeviceKind;
  readonly fidelity: Fidelity;
  readonly description: string;
  readonly harvestCall: string;
  readonly finalCall: string;
  /** The dirty tracking QEMU's choice rule picked for the device, and how it was armed. */
  readonly tracking?: string;
}

/** The devices' own state over the run (present when a device has state: `mlx5`). */
export interface DeviceStateSummary {
  /** Device state sent during pre-copy (PRECOPY_INFO's initial + dirty bytes), bytes. */
  readonly precopyBytes: number;
  /** Device state sent during stop-and-copy (STOP_COPY), bytes: part of the downtime. */
  readonly downtimeBytes: number;
  /** Guest memory sent during stop-and-copy, bytes. */
  readonly downtimeMemoryBytes: number;
  /** MIG_DATA_SIZE summed over the devices at switch-over (their full state size), bytes. */
  readonly dataSizeAtStop: number;
  /** What takes more of the downtime. */
  readonly dominates: "memory" | "device state";
}

/** Everything a finished run reports. */
export interface MigrationResult {
  readonly scenario: Scenario;
  readonly regions: ReadonlyArray<{ readonly name: string; readonly gpa: number; readonly bytes: number }>;
  readonly backends: readonly BackendInfo[];
  /** Pre-copy rounds, then the stop-and-copy round last. */
  readonly rounds: readonly RoundResult[];
  readonly converged: boolean;
  readonly stop: StopCause;
  /** Why it did not converge; null when it did. */
  readonly reason: string | null;
  readonly totals: {
    readonly precopyRounds: number;
    readonly sentPages: number;
    readonly sentBytes: number;
    /** Simulated migration time including stop latency and downtime, seconds. */
    readonly simulatedSeconds: number;
    readonly downtimeSeconds: number;
    /** Measured wall time of every harvest, milliseconds. */
    readonly harvestMs: number;
    /** Measured wall time of the whole run (set-up, DMA, harvests, checks), milliseconds. */
    readonly wallMs: number;
  };
  readonly check: LedgerCheck;
  /** Device state, when a device has its own (see DeviceStateSummary). */
  readonly deviceState?: DeviceStateSummary;
}

/** A run that could not complete: a backend call failed, or the VMM blocked migration. */
export interface MigrationFailure {
  readonly device: string;
  readonly call: string;
  /** The failed call's errno; 0 for a blocker. */
  readonly errno: number;
  readonly message: string;
  /** The VMM refused to migrate up front (QEMU's migration blocker): nothing was lost. */
  readonly blocker?: boolean;
}

/** Callbacks for progress display; all optional, all synchronous. */
export interface MigrationObserver {
  /** Once the devices are set up, before round 1. */
  begin?(info: Pick<MigrationResult, "regions" | "backends">): void;
  roundStart?(round: number, phase: RoundResult["phase"], sentPages: number, transferSeconds: number): void;
  /** Share of the round's DMA issued so far, 0..1. */
  progress?(round: number, fraction: number): void;
  roundEnd?(r: RoundResult): void;
}

/** Knobs that are not part of the scenario. */
export interface MigrationOptions {
  /** Backend per device kind; defaults to BACKENDS. Tests pass faulty ones. */
  readonly backends?: BackendTable;
  readonly observer?: MigrationObserver;
  /**
   * Stop pre-copy when the remainder has not shrunk (by STALL_MARGIN below its smallest so
   * far) for this many rounds; 0 = never.
   */
  readonly stallRounds?: number;
  /**
   * Worker threads for the DMA of concurrent devices (backends with `concurrent`, e.g. from
   * concurrentBackends): each pre-copy round's writes run there, and the harvest starts
   * once they are under way, so devices write while it reads and clears (src/threads:
   * `concurrentDma`). Other devices write on this thread as without it.
   */
  readonly dma?: ConcurrentDma;
  /**
   * The engine's Wasm core, or the compiled module to instantiate (it also becomes the
   * default for the devices' cores when none is loaded); default: the default module.
   */
  readonly core?: CoreInput;
}

/**
 * A pre-copy harvest starts once every concurrent device has issued this share of its
 * round; the devices spread the round's writes over the previous round's harvest time, so
 * the rest of them land while this harvest reads and clears.
 */
const OVERLAP_START = 0.25;

/** The share by which the remainder must shrink below its smallest so far to count as progress. */
export const STALL_MARGIN = 0.01;

/** Default for MigrationOptions.stallRounds. */
export const DEFAULT_STALL_ROUNDS = 3;

/** Seed of device `i`'s workload, derived from the scenario seed. */
export function deviceSeed(seed: number, i: number): number {
  return (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(i + 1, 0xc2b2ae35)) >>> 0;
}

interface Device {
  readonly backend: DeviceBackend;
  readonly workload: DmaWorkload;
  /** DMA bursts it issued in the current round. */
  bursts: number;
}

/** Distinct bursts between progress reports. */
const PROGRESS_STEP = 1 << 12;

/** A phase's outcome: its value, or the backend call that failed. */
type Phase<T> = T | MigrationFailure;

function isFailure<T>(x: Phase<T>): x is MigrationFailure {
  return typeof x === "object" && x !== null && "errno" in x;
}

/**
 * Runs the scenario (which must have passed validateScenario). Returns the result, or a
 * failure when a backend call returned an error. Never throws for a kernel error.
 *
 * The phases, one method each on MigrationRun: set up the devices (map guest RAM), start
 * dirty tracking, pre-copy rounds, stop-and-copy, then the ledger check and the summary.
 */
export function runMigration(scenario: Scenario, opts: MigrationOptions = {}): { result: MigrationResult } | { failure: MigrationFailure } {
  const wall0 = performance.now();
  let run: MigrationRun | null = null;
  try {
    run = new MigrationRun(scenario, opts);
    const setup = run.setUpDevices();
    if (isFailure(setup)) return { failure: setup };
    const blocked = run.checkBlockers();
    if (isFailure(blocked)) return { failure: blocked };
    const started = run.startTracking();
    if (isFailure(started)) return { failure: started };
    const pre = run.precopy();
    if (isFailure(pre)) return { failure: pre };
    const final = run.stopAndCopy();
    if (isFailure(final)) return { failure: final };
    return { result: run.summarize(pre, final, wall0) };
  } catch (e) {
    if (e instanceof OutOfMemory) return fail("vfio-sim", "allocate the migration bitmaps", -Errno.ENOMEM);
    throw e;
  } finally {
    run?.dispose();
  }
}

/** The state of one run: the model's core, the engine's bitmaps and the devices. */
class MigrationRun {
  private readonly table: BackendTable;
  private readonly obs: MigrationObserver;
  private readonly stallRounds: number;
  private readonly layout: GuestLayout;
  private readonly core: WasmCore;
  private readonly owned: Bitmap[] = [];
  private readonly devices: Device[] = [];
  /** The migration bitmap: pages the next send puts on the wire (allocated once tracking runs). */
  private toSend!: Bitmap;
  /** The ledger: pages a device wrote that no later send has covered yet. */
  private owed!: Bitmap;
  /** One region's harvested bits, staged for the OR into toSend. */
  private scratch!: Bitmap;
  private readonly words: number;
  private readonly rounds: RoundResult[] = [];
  private readonly burst: DmaBurst = { page: 0, npages: 0 };
  private regions: MigrationResult["regions"] = [];
  private backends: BackendInfo[] = [];
  /** Pages the harvest being collected reported (for its DeviceRound). */
  private reportedByDevice = 0;
  private readonly dma: ConcurrentDma | null;
  /** Batches of writes running in worker threads, and their bursts (page, npages pairs). */
  private pending: Array<{ name: string; batch: ConcurrentBatch; bursts: Float64Array; count: number }> = [];
  /** Set once stop-and-copy has begun. */
  private stopping = false;
  /** mapping-after-start: the RAM region plugged in the strike round, until then (-1: none). */
  private latePage = -1;
  /** Devices with state of their own, and what they sent. */
  private readonly stateful: DeviceStateMover[] = [];
  private devicePrecopyBytes = 0;
  private deviceDowntimeBytes = 0;
  private dataSizeAtStop = 0;

  constructor(
    private readonly scenario: Scenario,
    opts: MigrationOptions,
  ) {
    this.core = WasmCore.from(opts.core);
    this.table = opts.backends ?? BACKENDS;
    this.obs = opts.observer ?? {};
    this.stallRounds = opts.stallRounds ?? DEFAULT_STALL_ROUNDS;
    this.dma = opts.dma ?? null;
    this.layout = new GuestLayout(scenario.guestBytes, scenario.mappingPageSize);
    this.words = bitmapBytes(this.layout.ramPages) / 8;
  }

  /**
   * The engine's own bitmaps, allocated once the devices track (a guest whose tracking the
   * kernel refuses never needs them: the huge-guest scenario is larger than they can be).
   */
  private allocBitmaps(): void {
    const ram = this.layout.ramPages;
    this.toSend = this.bitmap(ram);
    this.owed = this.bitmap(ram);
    this.scratch = this.bitmap(Math.max(...this.layout.regions.map((r) => r.pages)));
  }

  private bitmap(nbits: number): Bitmap {
    const b = Bitmap.create(this.core, nbits);
    if (!b) throw new OutOfMemory();
    this.owned.push(b);
    return b;
  }

  /** Creates each device's backend and maps guest RAM for it. */
  setUpDevices(): Phase<void> {
    const { scenario, layout } = this;
    for (let i = 0; i < scenario.devices.length; i++) {
      const spec = scenario.devices[i];
      const workload = new DmaWorkload(spec.workload, layout, deviceSeed(scenario.seed, i));
      const pinned = spec.kind === "emulated" ? workload.hotPrefix(spec.pinned) : [];
      const backend = this.table[spec.kind](spec, layout, scenario, pinned);
      this.devices.push({ backend, workload, bursts: 0 });
      const ret = backend.setup();
      if (ret < 0) return failure(spec.name, "setup (map guest RAM)", ret);
    }
    this.regions = layout.regions.map((r) => ({ name: r.name, gpa: r.iova, bytes: r.bytes }));
    this.backends = this.devices.map(({ backend: b }) => ({
      device: b.spec.name,
      kind: b.spec.kind,
      fidelity: b.fidelity,
      description: b.description,
      harvestCall: b.harvester.call,
      finalCall: b.harvester.finalCall,
      ...(b.trackingNote ? { tracking: b.trackingNote } : {}),
    }));
    for (const { backend } of this.devices) if (backend.deviceState) this.stateful.push(backend.deviceState);
    if (scenario.adversary?.name === "mapping-after-start" && layout.regions.length > 1) this.latePage = layout.regions[1].ramPage;
    this.obs.begin?.({ regions: this.regions, backends: this.backends });
  }

  /** The fixed VMM's check before migrating: a backend's blocker ends the run cleanly. */
  checkBlockers(): Phase<void> {
    if (this.scenario.adversary?.naive) return;
    for (const d of this.devices) {
      const why = d.backend.migrationBlocker?.();
      if (why) return { device: d.backend.spec.name, call: "VFIO_IOMMU_GET_INFO (migration capability)", errno: 0, message: `migration blocked: ${why}`, blocker: true };
    }
  }

  startTracking(): Phase<void> {
    for (const d of this.devices) {
      const ret = d.backend.harvester.start();
      if (ret < 0) return failure(d.backend.spec.name, "start dirty tracking", ret);
    }
    // START armed the trackers: the BackendInfo lines show the ranges they took.
    this.refreshTracking();
    for (const d of this.devices) {
      const ret = d.backend.deviceState?.startPrecopy() ?? 0;
      if (ret < 0) return failure(d.backend.spec.name, "VFIO_DEVICE_FEATURE MIG_DEVICE_STATE (RUNNING -> PRE_COPY)", ret);
    }
  }

  /** Copies each backend's current tracking line (it changes with START) into the BackendInfo. */
  private refreshTracking(): void {
    this.backends = this.backends.map((b, i) => {
      const t = this.devices[i].backend.trackingNote;
      return t ? { ...b, tracking: t } : b;
    });
  }

  /** Every stateful device's pre-copy share of a round (PRECOPY_INFO, then read): bytes sent. */
  private sendDeviceState(): Phase<number> {
    let bytes = 0;
    for (const d of this.devices) {
      const ret = d.backend.deviceState?.precopyRound() ?? 0;
      if (ret < 0) return failure(d.backend.spec.name, "VFIO_MIG_GET_PRECOPY_INFO / read(data_fd)", ret);
      bytes += ret;
    }
    this.devicePrecopyBytes += bytes;
    return bytes;
  }

  /** Device state PRECOPY_INFO says is left to send, summed (a query error counts as nothing pending). */
  private pendingDeviceState(): number {
    return this.stateful.reduce((a, m) => a + Math.max(0, m.pending()), 0);
  }

  /** Pre-copy: round 1 sends all of RAM, later rounds what the last harvest reported. */
  precopy(): Phase<StopCause> {
    this.allocBitmaps();
    const { scenario, toSend, owed, obs } = this;
    toSend.set(0, this.layout.ramPages);
    let stalled = 0;
    let best = Infinity;
    for (let round = 1; ; round++) {
      const sentPages = toSend.popcount();
      const stateBytes = this.sendDeviceState();
      if (isFailure(stateBytes)) return stateBytes;
      const seconds = (sentPages * PAGE_SIZE + stateBytes) / scenario.bandwidth;
      obs.roundStart?.(round, "pre-copy", sentPages, seconds);
      this.send();

      const strike = scenario.adversary && scenario.adversary.round === round ? scenario.adversary : null;
      if (strike?.name === "mapping-after-start") {
        const r = this.plugLateRegion(!strike.naive);
        if (isFailure(r)) return r;
      }

      // The devices write while the round's pages are on the wire, and their state changes.
      const bursts = this.writeFor(round, seconds, true);
      if (isFailure(bursts)) return bursts;
      for (const m of this.stateful) m.run(seconds);

      if (strike?.name === "unmap-no-query") {
        const r = this.remapRegion(0, !strike.naive);
        if (isFailure(r)) return r;
      }
      if (strike?.name === "harvest-fails") for (const d of this.devices) d.backend.breakNextHarvest?.(1);

      const writtenBefore = owed.popcount();
      const h = this.harvestAll(false, strike?.name === "harvest-fails" ? (strike.naive ? "drop" : "merge") : null);
      if (isFailure(h)) return h;
      // Concurrent devices finish the round's writes (some raced the harvest just run).
      const settled = this.settle();
      if (isFailure(settled)) return settled;
      const writtenPages = this.dma ? owed.popcount() : writtenBefore;
      const remaining = toSend.popcount();
      const r: RoundResult = {
        round,
        phase: "pre-copy",
        sentPages,
        transferSeconds: seconds,
        bursts,
        writtenPages,
        reportedPages: remaining,
        harvestMs: h.ms,
        devices: h.devices,
        ...(this.stateful.length > 0 ? { deviceStateBytes: stateBytes } : {}),
      };
      this.rounds.push(r);
      obs.roundEnd?.(r);

      // QEMU's switch-over test counts the devices' pending state with the pages.
      if ((remaining * PAGE_SIZE + this.pendingDeviceState()) / scenario.bandwidth <= scenario.downtimeLimit) return "fits-downtime";
      // Progress is a new smallest remainder by at least STALL_MARGIN: a saturated working
      // set re-dirtied every round wobbles by a few bursts, which is no progress.
      stalled = remaining < best * (1 - STALL_MARGIN) ? 0 : stalled + 1;
      best = Math.min(best, remaining);
      if (this.stallRounds > 0 && stalled >= this.stallRounds) return "stalled";
      if (round >= scenario.maxRounds) return "max-rounds";
    }
  }

  /**
   * Stop-and-copy: the devices run on for the stop latency (the switch-over decision and
   * stopping the guest), then stop; one final harvest; the rest is sent during downtime.
   * Returns the downtime in simulated seconds.
   */
  stopAndCopy(): Phase<number> {
    const round = this.rounds.length + 1;
    this.stopping = true;
    const bursts = this.writeFor(round, this.scenario.stopLatency, false);
    if (isFailure(bursts)) return bursts;
    for (const m of this.stateful) m.run(this.scenario.stopLatency);
    // The devices stop before the final harvest: every write has landed.
    const settled = this.settle();
    if (isFailure(settled)) return settled;
    // Stateful devices stop through PRE_COPY_P2P -> STOP_COPY; their rest goes in downtime.
    let stateBytes = 0;
    for (const d of this.devices) {
      const m = d.backend.deviceState;
      if (!m) continue;
      const size = m.dataSize();
      if (size > 0) this.dataSizeAtStop += size;
      const ret = m.stopCopy();
      if (ret < 0) return failure(d.backend.spec.name, "MIG_DEVICE_STATE STOP_COPY / read(data_fd)", ret);
      stateBytes += ret;
    }
    this.deviceDowntimeBytes = stateBytes;
    const writtenPages = this.owed.popcount();
    const final = this.harvestAll(true);
    if (isFailure(final)) return final;
    const sentPages = this.toSend.popcount();
    const downtime = (sentPages * PAGE_SIZE + stateBytes) / this.scenario.bandwidth;
    const r: RoundResult = {
      round,
      phase: "stop-and-copy",
      sentPages,
      transferSeconds: downtime,
      bursts,
      writtenPages,
      reportedPages: sentPages,
      harvestMs: final.ms,
      devices: final.devices,
      ...(this.stateful.length > 0 ? { deviceStateBytes: stateBytes } : {}),
    };
    this.obs.roundStart?.(round, "stop-and-copy", sentPages, downtime);
    this.send();
    this.rounds.push(r);
    this.obs.roundEnd?.(r);
    return downtime;
  }

  /** The ledger check, the verdict and the totals. */
  summarize(stop: StopCause, downtime: number, wall0: number): MigrationResult {
    const { scenario, rounds } = this;
    this.refreshTracking();
    const converged = stop === "fits-downtime" && downtime <= scenario.downtimeLimit;
    const sent = rounds.reduce((a, r) => a + r.sentPages, 0);
    return {
      scenario,
      regions: this.regions,
      backends: this.backends,
      rounds,
      converged,
      stop,
      reason: converged ? null : explain(scenario, this.layout, rounds, stop),
      totals: {
        precopyRounds: rounds.length - 1,
        sentPages: sent,
        // Device state goes on the wire with the pages.
        sentBytes: sent * PAGE_SIZE + this.devicePrecopyBytes + this.deviceDowntimeBytes,
        simulatedSeconds: rounds.reduce((a, r) => a + r.transferSeconds, 0) + scenario.stopLatency,
        downtimeSeconds: downtime,
        harvestMs: rounds.reduce((a, r) => a + r.harvestMs, 0),
        wallMs: performance.now() - wall0,
      },
      check: ledgerCheck(this.owed, this.layout),
      ...(this.stateful.length > 0 ? { deviceState: this.deviceStateSummary() } : {}),
    };
  }

  private deviceStateSummary(): DeviceStateSummary {
    const fin = this.rounds[this.rounds.length - 1];
    const mem = fin.sentPages * PAGE_SIZE;
    return {
      precopyBytes: this.devicePrecopyBytes,
      downtimeBytes: this.deviceDowntimeBytes,
      downtimeMemoryBytes: mem,
      dataSizeAtStop: this.dataSizeAtStop,
      dominates: this.deviceDowntimeBytes > mem ? "device state" : "memory",
    };
  }

  /**
   * mapping-after-start: the late RAM region gets its DMA mapping on every device now;
   * `rearm` (the fix) restarts DMA logging with recomputed ranges, merging what was logged
   * before the STOP into the migration bitmap.
   */
  private plugLateRegion(rearm: boolean): Phase<void> {
    if (this.latePage < 0) return;
    this.latePage = -1;
    for (const d of this.devices) {
      const ret = d.backend.addMapping?.(1, rearm, this.sink) ?? 0;
      if (ret < 0) return failure(d.backend.spec.name, `map RAM region ${this.layout.regions[1].name} (${rearm ? "restart DMA logging" : "logging left as armed"})`, ret);
    }
    this.refreshTracking();
  }

  dispose(): void {
    for (const d of this.devices) d.backend.dispose();
    for (const b of this.owned) b.dispose();
  }

  /** The send: everything in the migration bitmap leaves now, and is owed no longer. */
  private send(): void {
    this.core.x.andNotWords(this.owed.ptr, this.toSend.ptr, this.words);
    this.toSend.clear();
  }

  /**
   * Every device issues its bursts for `seconds` of simulated time; returns the count.
   * Only the distinct bursts of the round reach the model and the ledger (the workload
   * draws them directly): a repeat of a burst already written since the last harvest
   * cannot change dirty state. So the cost is bounded by the working sets, not by the
   * simulated time, and the ledger is as exact as if every burst had been issued.
   */
  private writeFor(round: number, seconds: number, report: boolean): Phase<number> {
    const { devices, burst, owed, obs } = this;
    const counts = devices.map((d) => d.workload.burstsIn(seconds));
    const total = counts.reduce((a, b) => a + b, 0);
    let done = 0;
    for (let i = 0; i < devices.length; i++) {
      const d = devices[i];
      const w = d.backend.writer;
      const conc = this.dma ? d.backend.concurrent : null;
      if (this.dma && conc) {
        this.startConcurrent(d, i, counts[i], conc.pageTable, (p) => conc.iovaOf(p));
        done += counts[i];
        d.bursts = counts[i];
        continue;
      }
      d.workload.startRound(counts[i]);
      for (let k = 1; d.workload.nextDistinct(burst); k++) {
        // mapping-after-start: nothing can DMA into RAM that is not plugged yet.
        if (this.latePage >= 0 && burst.page >= this.latePage) continue;
        const ret = w.write(burst.page, burst.npages);
        if (ret < 0) return failure(d.backend.spec.name, `DMA write at RAM page ${burst.page}`, ret);
        owed.set(burst.page, burst.npages);
        if (report && k % PROGRESS_STEP === 0 && total > 0) obs.progress?.(round, (done + counts[i] * d.workload.roundFraction(counts[i])) / total);
      }
      done += counts[i];
      d.bursts = counts[i];
    }
    // The harvest starts once the concurrent devices are under way.
    for (const p of this.pending) p.batch.waitProgress(Math.floor(p.count * OVERLAP_START));
    if (report) obs.progress?.(round, 1);
    return total;
  }

  /**
   * Hands device `i`'s `count` bursts to a worker thread. Every burst is issued (a page
   * already written since the last harvest is not skipped: the harvest may have cleared it
   * meanwhile); the ledger records them when the batch has finished (settle).
   */
  private startConcurrent(d: Device, i: number, count: number, pageTable: number, iovaOf: (ramPage: number) => number): void {
    const writes = new Float64Array(2 * count);
    const bursts = new Float64Array(2 * count);
    for (let k = 0; k < count; k++) {
      d.workload.next(this.burst);
      bursts[2 * k] = this.burst.page;
      bursts[2 * k + 1] = this.burst.npages;
      writes[2 * k] = iovaOf(this.burst.page);
      writes[2 * k + 1] = this.burst.npages * PAGE_SIZE;
    }
    // Pre-copy: spread over the last harvest's time; stop-and-copy: as fast as they go (the
    // final harvest waits for them anyway).
    const prev = this.rounds[this.rounds.length - 1];
    const batch = this.dma!.start(i, pageTable, writes, count, prev && !this.stopping ? prev.harvestMs : 0);
    this.pending.push({ name: d.backend.spec.name, batch, bursts, count });
  }

  /**
   * Waits for the concurrent batches, then records their writes in the ledger. Every one of
   * them landed before the next send starts, so "owed until a later send covers it" holds
   * as for writes on this thread; a write that raced the harvest and set D after the harvest
   * read its PTE is reported by the next harvest and stays owed until the send after it.
   */
  private settle(): Phase<void> {
    const pending = this.pending;
    this.pending = [];
    let failed: MigrationFailure | null = null;
    for (const p of pending) {
      const ret = p.batch.wait();
      if (ret < 0 && !failed) failed = failure(p.name, "DMA write (worker thread)", ret);
      for (let k = 0; k < p.count; k++) this.owed.set(p.bursts[2 * k], p.bursts[2 * k + 1]);
    }
    if (failed) return failed;
  }

  /** Merges one harvested region into the migration bitmap; counts what it reported. */
  private readonly sink: HarvestSink = (ramPage, bits, nbits) => {
    const { core, scratch } = this;
    const need = bitmapBytes(nbits);
    const u8 = core.u8;
    u8.set(bits.subarray(0, need), scratch.ptr);
    // A short buffer must not let the previous region's bits through.
    if (bits.length < need) u8.fill(0, scratch.ptr + bits.length, scratch.ptr + need);
    this.reportedByDevice += core.x.popcountRange(scratch.ptr, 0, nbits) >>> 0;
    core.x.orBits(this.toSend.ptr, ramPage, scratch.ptr, nbits);
  };

  /**
   * The VMM deletes and re-adds RAM region `index` on every device (the unmap-no-query
   * scenario); with `queryFirst` the region's dirty bits are read before the unmap and
   * merged into the migration bitmap.
   */
  private remapRegion(index: number, queryFirst: boolean): Phase<void> {
    for (const d of this.devices) {
      if (!d.backend.remapRegion) continue;
      const ret = d.backend.remapRegion(index, queryFirst, this.sink);
      if (ret < 0) return failure(d.backend.spec.name, `remap RAM region ${this.layout.regions[index].name}`, ret);
    }
  }

  /**
   * One harvest per device (the final one after the devices stopped), timed. `onFailure`
   * (the harvest-fails scenario): a failed harvest is not fatal; `drop` discards what it
   * returned (the naive VMM), `merge` keeps the regions that succeeded (the fix).
   */
  private harvestAll(final: boolean, onFailure: "drop" | "merge" | null = null): Phase<{ devices: DeviceRound[]; ms: number }> {
    const out: DeviceRound[] = [];
    let total = 0;
    for (const d of this.devices) {
      const h = d.backend.harvester;
      const t0 = performance.now();
      const ret = final ? h.finalHarvest() : h.harvest();
      const ms = performance.now() - t0;
      if (ret < 0 && !onFailure) return failure(d.backend.spec.name, final ? h.finalCall : h.call, ret);
      this.reportedByDevice = 0;
      if (ret >= 0 || onFailure === "merge") h.collect(this.sink);
      total += ms;
      out.push({ device: d.backend.spec.name, kind: d.backend.spec.kind, bursts: d.bursts, reportedPages: this.reportedByDevice, harvestMs: ms });
    }
    return { devices: out, ms: total };
  }
}

/** Linear memory could not hold an engine bitmap: reported as ENOMEM, never thrown out. */
class OutOfMemory extends Error {}

function failure(device: string, call: string, ret: number): MigrationFailure {
  return { device, call, errno: -ret, message: `${device}: ${call} failed with ${errnoName(-ret)}` };
}

function fail(device: string, call: string, ret: number): { failure: MigrationFailure } {
  return { failure: failure(device, call, ret) };
}

/** Reads the ledger: every page still owed was written and never sent afterwards. */
function ledgerCheck(owed: Bitmap, layout: GuestLayout): LedgerCheck {
  const lost = owed.popcount();
  const examples: Array<{ page: number; gpa: number }> = [];
  for (let p = owed.findNextSet(0); p < owed.nbits && examples.length < 8; p = owed.findNextSet(p + 1)) {
    examples.push({ page: p, gpa: layout.iovaOf(p) });
  }
  return { ok: lost === 0, lostPages: lost, examples };
}

/** Why a run did not converge, in one sentence, from what the rounds show. */
function explain(s: Scenario, layout: GuestLayout, rounds: readonly RoundResult[], stop: StopCause): string {
  const pre = rounds.filter((r) => r.phase === "pre-copy");
  const last = pre[pre.length - 1];
  const need = (pages: number): number => (pages * PAGE_SIZE) / s.bandwidth;
  const ms = (sec: number): string => `${Math.round(sec * 1000)} ms`;
  const gib = (pages: number): string => `${((pages * PAGE_SIZE) / 2 ** 30).toFixed(2)} GiB`;
  const limit = `the ${ms(s.downtimeLimit)} downtime limit`;
  if (stop === "fits-downtime") {
    const fin = rounds[rounds.length - 1];
    return (
      `the remainder fit the limit when pre-copy ended (${ms(need(last.reportedPages))}), but the devices kept ` +
      `writing for the ${ms(s.stopLatency)} stop latency and the final harvest brought it to ${ms(fin.transferSeconds)} > ${limit}.`
    );
  }
  const allDirty = s.devices.filter((d) => pre.every((r) => r.devices.find((x) => x.device === d.name)!.reportedPages >= layout.ramPages));
  const ending =
    stop === "stalled" ? `pre-copy stopped after ${pre.length} rounds without progress` : `pre-copy stopped at the round limit (${s.maxRounds})`;
  if (allDirty.length > 0) {
    const names = allDirty.map((d) => `${d.name} (${d.kind})`).join(", ");
    return (
      `${names} reported every mapped page dirty on every harvest (type1 without dirty tracking: ` +
      `num_non_pinned_groups != 0), so each round re-sends all ${gib(layout.ramPages)} of RAM, ` +
      `which needs ${ms(need(layout.ramPages))} > ${limit}; ${ending}.`
    );
  }
  const amplification = last.writtenPages > 0 ? last.reportedPages / last.writtenPages : 1;
  const leaves =
    amplification >= 2 && s.mappingPageSize > PAGE_SIZE && s.devices.some((d) => d.kind === "iommufd" || d.kind === "hw-type1")
      ? ` The harvests report ${amplification.toFixed(1)}x the pages actually written: hardware dirty bits cover whole ` +
        `${s.mappingPageSize / 2 ** 20} MiB IOMMU leaves.`
      : "";
  const dirtyRate = last.reportedPages / Math.max(last.transferSeconds, 1e-9);
  const sendRate = s.bandwidth / PAGE_SIZE;
  if (dirtyRate >= sendRate) {
    return (
      `the devices dirty ${Math.round(dirtyRate)} pages/s, at least as fast as the link sends them ` +
      `(${Math.round(sendRate)} pages/s); the remainder of ${gib(last.reportedPages)} needs ` +
      `${ms(need(last.reportedPages))} > ${limit}; ${ending}.${leaves}`
    );
  }
  return `the remainder of ${gib(last.reportedPages)} still needs ${ms(need(last.reportedPages))} > ${limit}; ${ending}.${leaves}`;
}
