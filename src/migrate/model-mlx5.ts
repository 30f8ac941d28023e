/**
 * The `mlx5` device kind: an mlx5-like VF (src/vfio/mlx5.ts, modelled from the driver's
 * source) behind a dirty-tracking IOMMU, migrated the way QEMU migrates it:
 * - DMA goes through the IOMMU (a ModelIommufd underneath: IOAS_MAP, IOTLB, page walk)
 *   and the device's page tracker sees the same writes;
 * - dirty tracking by QEMU's choice rule (qemuDirtyTrackingChoice): device DMA logging when
 *   every device of the guest supports it — DMA_LOGGING_START with QEMU's ranges computed
 *   from the mapped RAM sections (qemuDmaLoggingRanges; the device's range limit makes the
 *   driver merge them, vfio_combine_iova_ranges), DMA_LOGGING_REPORT per region each
 *   harvest (read and clear through the core's iova_bitmap), STOP after the final one;
 *   otherwise the container's IOMMU dirty tracking (HWPT_GET_DIRTY_BITMAP) underneath;
 * - the device's own state through the migration uAPI v2 (DeviceStateMover): PRE_COPY,
 *   PRECOPY_INFO each round, PRE_COPY_P2P -> STOP_COPY at switch-over.
 */
import { Process } from "../process";
import { Errno } from "../uapi/errno";
import { Mlx5Device, VfioCoreDevice, VfioDevice, installVfioDevice, VFIO_CORE_LINUX_6_12 } from "../vfio";
import type { DmaLogRange } from "../vfio";
import type { DeviceBackend, DeviceStateMover, DirtyHarvester, DmaWriter, HarvestSink } from "./backend";
import { qemuDirtyTrackingChoice, qemuDmaLoggingRanges, type QemuDirtyTrackingChoice } from "./dma-logging-ranges";
import { PAGE_SIZE, type GuestLayout } from "./layout";
import { ModelIommufd } from "./model-iommufd";
import type { DeviceKind, DeviceSpec, Scenario } from "./scenario";

/** The device's page-tracker range limit (pg_track_max_num_range): QEMU's two RAM spans are merged into one. */
export const MLX5_MIGRATE_MAX_RANGES = 1;

/** The device state model of the `mlx5` kind (choices, not a measured device). */
export const MLX5_DEVICE_STATE = {
  /** State size when migration starts, bytes. */
  initialBytes: 2 * 2 ** 20,
  /** State changed per second while the device runs, bytes/s (capped at the state size per round). */
  dirtyRate: 2e6,
  /** State growth per second while the device runs, bytes/s. */
  growRate: 16 * 2 ** 10,
} as const;

/** Bytes per read(2) of the data fd. */
const READ_CHUNK = 1 << 20;

/** Whether the device kind answers DMA_LOGGING_START's PROBE (only the mlx5-like VF does). */
export function kindSupportsDmaLogging(kind: DeviceKind): boolean {
  return kind === "mlx5";
}

/** QEMU's choice for a scenario's devices (every kind here sits on a container with dirty tracking). */
export function scenarioDirtyTrackingChoice(s: Scenario): QemuDirtyTrackingChoice {
  return qemuDirtyTrackingChoice(
    s.devices.map((d) => ({ dirtyPagesSupported: kindSupportsDmaLogging(d.kind) })),
    true,
  );
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;
const fmtRanges = (rs: ReadonlyArray<{ start: bigint; last: bigint }>): string => rs.map((r) => `[${hex(r.start)}-${hex(r.last)}]`).join(" ");

/** One mlx5-like VF on the model: see the file comment. */
export class ModelMlx5 implements DeviceBackend, DmaWriter, DirtyHarvester, DeviceStateMover {
  readonly fidelity = "model" as const;
  readonly description: string;
  readonly call: string;
  readonly finalCall: string;
  readonly writer: DmaWriter = this;
  readonly harvester: DirtyHarvester = this;
  readonly deviceState: DeviceStateMover = this;
  readonly concurrent = null;
  /** "device" (DMA logging) or "container" (the IOMMU's dirty tracking underneath). */
  readonly choice: QemuDirtyTrackingChoice;
  /** How the tracking was armed (set at construction, then by each START). */
  private armedNote: string;
  /** The VF's driver (tests look at its tracker). */
  readonly drv: Mlx5Device;
  /** DMA writes the tracker did not record (logging off, or outside every armed range). */
  untrackedWrites = 0;
  /** DMA_LOGGING_STARTs issued. */
  starts = 0;
  private readonly iommu: ModelIommufd;
  private readonly proc = new Process();
  private readonly dev: VfioDevice | null;
  /** Which RAM regions have a DMA mapping (mapping-after-start plugs one late). */
  private readonly mapped: boolean[];
  private dataFd = -1;
  /** The last harvest's REPORT bitmaps, per region (null: not reported). */
  private bitmaps: Array<Uint8Array | null>;

  constructor(
    readonly spec: DeviceSpec,
    private readonly layout: GuestLayout,
    scenario: Scenario,
  ) {
    this.iommu = new ModelIommufd(spec, layout, scenario);
    this.choice = scenarioDirtyTrackingChoice(scenario);
    const late = scenario.adversary?.name === "mapping-after-start" && layout.regions.length > 1 ? 1 : -1;
    this.mapped = layout.regions.map((_, i) => i !== late);
    this.bitmaps = layout.regions.map(() => null);
    this.drv = new Mlx5Device({ caps: { maxNumRange: MLX5_MIGRATE_MAX_RANGES }, imageBytes: BigInt(MLX5_DEVICE_STATE.initialBytes) });
    installVfioDevice(this.proc, "/dev/vfio/devices/vfio0", new VfioCoreDevice(this.drv, VFIO_CORE_LINUX_6_12));
    const d = VfioDevice.open(this.proc, "/dev/vfio/devices/vfio0");
    this.dev = d.ok ? d.value : null;
    const device = this.choice === "device";
    this.call = device ? "VFIO_DEVICE_FEATURE DMA_LOGGING_REPORT" : this.iommu.call;
    this.finalCall = device ? "DMA_LOGGING_REPORT, devices stopped, then DMA_LOGGING_STOP" : this.iommu.finalCall;
    this.description =
      "mlx5-like VF (src/vfio/mlx5.ts, modelled from the driver's source) behind iommufd; " +
      (device ? "dirty pages by device DMA logging through the VFIO core" : "dirty pages by the IOMMU (not every device has DMA logging)") +
      "; device state by the migration uAPI v2";
    this.armedNote = device
      ? "device DMA logging (every device supports it)"
      : "container IOMMU dirty tracking (QEMU's choice rule: not every device supports DMA logging)";
  }

  /** The tracking line of reports: how it was armed, and the DMA the tracker never recorded. */
  get trackingNote(): string {
    const u = this.untrackedWrites;
    return u === 0 || this.choice !== "device"
      ? this.armedNote
      : `${this.armedNote}; ${u} DMA write${u === 1 ? "" : "s"} outside every armed range (the tracker answered "untracked")`;
  }

  setup(): number {
    if (!this.dev) return -Errno.ENODEV;
    return this.iommu.setup();
  }

  /** QEMU's DMA_LOGGING_START ranges for the RAM regions mapped now. */
  private qemuRanges(): DmaLogRange[] {
    const sections = this.layout.regions.filter((_, i) => this.mapped[i]).map((r) => ({ iova: BigInt(r.iova), end: BigInt(r.iova + r.bytes - 1) }));
    return qemuDmaLoggingRanges(sections);
  }

  /** DMA_LOGGING_START with QEMU's ranges; records what the driver armed in `tracking`. */
  private startLogging(): number {
    const ranges = this.qemuRanges();
    const r = this.dev!.startLogging(ranges, BigInt(PAGE_SIZE));
    if (!r.ok) return -r.errno;
    const asked = ranges.map((x) => ({ start: x.iova, last: x.iova + x.length - 1n }));
    const armed = this.drv.armed.map((a) => `[${hex(a.start)}, ${hex(a.end)})`).join(" ");
    const merged =
      this.drv.armed.length < asked.length
        ? `; the device tracks at most ${this.drv.caps.maxNumRange} range${this.drv.caps.maxNumRange === 1 ? "" : "s"}, so the driver merged them (vfio_combine_iova_ranges) and armed ${armed}`
        : "";
    this.starts++;
    const again = this.starts > 1 ? `restarted after a new mapping (REPORT, STOP, then START #${this.starts}) ` : "";
    this.armedNote = `device DMA logging (every device supports it): ${again}START with QEMU's ${asked.length} range${asked.length === 1 ? "" : "s"} ${fmtRanges(asked)}${merged}, page size ${r.value.pageSize}`;
    return 0;
  }

  start(): number {
    if (this.choice !== "device") return this.iommu.start();
    return this.startLogging();
  }

  write(ramPage: number, npages: number): number {
    const ret = this.iommu.writer.write(ramPage, npages);
    if (ret < 0) return ret;
    if (this.drv.dma(BigInt(this.layout.iovaOf(ramPage)), BigInt(npages * PAGE_SIZE), true) === "untracked") this.untrackedWrites++;
    return 0;
  }

  /** DMA_LOGGING_REPORT of every region into fresh bitmaps (read and clear). */
  private reportAll(): number {
    for (let i = 0; i < this.layout.regions.length; i++) {
      const reg = this.layout.regions[i];
      const r = this.dev!.report(BigInt(reg.iova), BigInt(reg.bytes), BigInt(PAGE_SIZE));
      if (!r.ok) return -r.errno;
      this.bitmaps[i] = r.value;
    }
    return 0;
  }

  harvest(): number {
    if (this.choice !== "device") return this.iommu.harvest();
    return this.reportAll();
  }

  finalHarvest(): number {
    if (this.choice !== "device") return this.iommu.finalHarvest();
    const r = this.reportAll();
    if (r < 0) return r;
    const s = this.dev!.stopLogging();
    return s.ok ? 0 : -s.errno;
  }

  collect(sink: HarvestSink): void {
    if (this.choice !== "device") return this.iommu.collect(sink);
    this.layout.regions.forEach((reg, i) => {
      const b = this.bitmaps[i];
      if (b) sink(reg.ramPage, b, reg.pages);
    });
  }

  addMapping(index: number, rearm: boolean, sink: HarvestSink): number {
    this.mapped[index] = true;
    if (!rearm || this.choice !== "device") return 0;
    // What was logged under the old ranges is reported before the STOP forgets it.
    const r = this.reportAll();
    if (r < 0) return r;
    this.collect(sink);
    const s = this.dev!.stopLogging();
    if (!s.ok) return -s.errno;
    return this.startLogging();
  }

  // ---- device state (migration uAPI v2) ----

  startPrecopy(): number {
    const s = this.dev!.setState("PRE_COPY");
    if (!s.ok) return -s.errno;
    this.dataFd = s.value.dataFd ?? -1;
    return this.dataFd >= 0 ? 0 : -Errno.EBADF;
  }

  run(seconds: number): void {
    const dirty = BigInt(Math.round(MLX5_DEVICE_STATE.dirtyRate * seconds));
    const grow = BigInt(Math.round(MLX5_DEVICE_STATE.growRate * seconds));
    this.drv.runState(dirty, grow);
  }

  /** Reads exactly `bytes` from the data fd (fewer when the stream ends first). */
  private drain(bytes: number): number {
    let got = 0;
    while (got < bytes) {
      const r = this.dev!.readData(this.dataFd, Math.min(READ_CHUNK, bytes - got));
      if (!r.ok) return -r.errno;
      if (r.value.length === 0) break;
      got += r.value.length;
    }
    return got;
  }

  precopyRound(): number {
    // QEMU's vfio_save_iterate: PRECOPY_INFO, then read what it announced.
    const p = this.dev!.precopyInfo(this.dataFd);
    if (!p.ok) return -p.errno;
    return this.drain(Number(p.value.initialBytes + p.value.dirtyBytes));
  }

  pending(): number {
    const p = this.dev!.precopyInfo(this.dataFd);
    return p.ok ? Number(p.value.initialBytes + p.value.dirtyBytes) : -p.errno;
  }

  dataSize(): number {
    const r = this.dev!.dataSize();
    return r.ok ? Number(r.value) : -r.errno;
  }

  stopCopy(): number {
    for (const st of ["PRE_COPY_P2P", "STOP_COPY"] as const) {
      const s = this.dev!.setState(st);
      if (!s.ok) return -s.errno;
    }
    let got = 0;
    for (;;) {
      const r = this.dev!.readData(this.dataFd, READ_CHUNK);
      if (!r.ok) return -r.errno;
      if (r.value.length === 0) return got;
      got += r.value.length;
    }
  }

  dispose(): void {
    this.dev?.close();
    this.proc.exit();
    this.iommu.dispose();
  }
}
