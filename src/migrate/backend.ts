/**
 * The seam between the migration engine and the subsystems that track DMA: a device
 * backend sets up the device's DMA mappings, performs its writes (`DmaWriter`) and
 * harvests what it dirtied (`DirtyHarvester`). One factory per device kind; the engine
 * knows nothing else about them, so swapping a stand-in for the real model is a change to
 * `BACKENDS` (see backends.ts) and nothing more.
 *
 * Kernel-style results: every call returns 0 (or a count) on success and -errno on failure,
 * never throws for a kernel error.
 */
import type { GuestLayout } from "./layout";
import type { DeviceKind, DeviceSpec, Scenario } from "./scenario";

/**
 * Receives one region's harvested bits: bit i = RAM page `ramPage + i` dirty. `bits` is a
 * view into the backend's (simulated user) memory, valid only during the call.
 */
export type HarvestSink = (ramPage: number, bits: Uint8Array, nbits: number) => void;

/** The device side: DMA writes into guest memory. */
export interface DmaWriter {
  /**
   * The device writes RAM pages [ramPage, ramPage + npages), all inside one RAM region
   * (through the IOMMU page tables, or vfio_dma_rw for an emulated device).
   * Returns 0 or -errno.
   */
  write(ramPage: number, npages: number): number;
}

/** The VMM side: the dirty-log sync of one device's tracking interface. */
export interface DirtyHarvester {
  /** The call a harvest makes, for reports (`VFIO_IOMMU_DIRTY_PAGES GET_BITMAP`). */
  readonly call: string;
  /** The call the final harvest makes after the devices have stopped. */
  readonly finalCall: string;
  /** Starts dirty tracking (DIRTY_PAGES START, HWPT_SET_DIRTY_TRACKING). 0 or -errno. */
  start(): number;
  /**
   * Reads and clears what was dirtied since the last harvest into the VMM's user bitmaps.
   * This is the part whose wall time is measured. 0 or -errno.
   */
  harvest(): number;
  /**
   * The last harvest, once the devices are stopped (type1 kinds: UNMAP_DMA with
   * GET_DIRTY_BITMAP, so the mappings are gone afterwards). 0 or -errno.
   */
  finalHarvest(): number;
  /** Hands the user bitmaps of the last (final) harvest to `sink`, one call per region. */
  collect(sink: HarvestSink): void;
}

/**
 * How much of a backend is the model itself:
 * - `model`: the calls go to the library's subsystems through the interface the kind
 *   names (e.g. type1 ioctls on the model's container);
 * - `partial`: the data path runs on the model's subsystem (page tables, IOTLB, the
 *   driver's dirty walk) but the ioctl layer the kind names is not modelled yet;
 * - `stand-in`: an interim implementation in this folder that follows the same kernel
 *   rules on plain Wasm bitmaps.
 */
export type Fidelity = "model" | "partial" | "stand-in";

/**
 * A device whose DMA may run in another thread: its writes walk one page table in a shared
 * Wasm core (WasmCore.createShared) with the atomic A/D update, and its harvester then
 * read-and-clears with per-PTE atomics.
 */
export interface ConcurrentDevice {
  /** Address of the page table (header) the device's writes walk, in the shared core. */
  readonly pageTable: number;
  /** The IOVA at which the device writes RAM page `ramPage`. */
  iovaOf(ramPage: number): number;
}

/** A batch of writes running in another thread. */
export interface ConcurrentBatch {
  /** Blocks until at least `n` writes are done, or the batch has finished. */
  waitProgress(n: number): void;
  /** Blocks until every write is done: 0, or -errno of the first that faulted. */
  wait(): number;
}

/**
 * Runs device writes in other threads (src/threads implements it on worker_threads; the
 * engine knows only this interface, so it stays loadable where there are no workers).
 */
export interface ConcurrentDma {
  /**
   * Starts `count` writes, (IOVA, bytes) pairs in `writes`, of device `device` on
   * `pageTable`, spread evenly over `spreadMs` of wall time (0: as fast as they go).
   */
  start(device: number, pageTable: number, writes: Float64Array, count: number, spreadMs: number): ConcurrentBatch;
}

/** One device wired to a tracking backend. */
export interface DeviceBackend {
  readonly spec: DeviceSpec;
  readonly fidelity: Fidelity;
  /** What the backend is, in one line (shown in reports). */
  readonly description: string;
  /** Maps the guest's RAM regions for the device (MAP_DMA / IOAS_MAP, attach, pin). 0 or -errno. */
  setup(): number;
  readonly writer: DmaWriter;
  readonly harvester: DirtyHarvester;
  /** Set when the device can DMA from another thread (see ConcurrentDevice); after setup(). */
  readonly concurrent?: ConcurrentDevice | null;
  /** Releases the backend's memory. */
  dispose(): void;
  /**
   * Adversarial scenarios (see AdversaryName), optional: the VMM deletes and re-adds RAM
   * region `index` (unmap, map again at the same IOVA) while tracking runs; with
   * `queryFirst` it reads the region's dirty bits before the unmap and hands them to `sink`.
   * 0 or -errno.
   */
  remapRegion?(index: number, queryFirst: boolean, sink: HarvestSink): number;
  /** The next harvest passes an unmapped user bitmap for region `index` (EFAULT there). */
  breakNextHarvest?(index: number): void;
  /** Why the kernel's dirty tracking cannot cover this guest (a migration blocker), or null. */
  migrationBlocker?(): string | null;
  /**
   * The dirty tracking QEMU's choice rule picked for this device and how it was armed, in
   * one line (device DMA logging with its ranges, or the container's IOMMU tracking).
   */
  readonly trackingNote?: string;
  /** A device with migratable state of its own (VFIO migration uAPI v2); absent otherwise. */
  readonly deviceState?: DeviceStateMover | null;
  /**
   * The mapping-after-start scenario: RAM region `index` gets its DMA mapping now (while
   * tracking runs). With `rearm` the VMM restarts the device's DMA logging with ranges
   * recomputed from every mapped region, handing what was logged before the STOP to `sink`.
   * 0 or -errno.
   */
  addMapping?(index: number, rearm: boolean, sink: HarvestSink): number;
}

/**
 * A device's own state as the VMM moves it (QEMU's vfio save handlers over the migration
 * uAPI v2). Byte counts are plain numbers (the model's states stay far below 2^53).
 */
export interface DeviceStateMover {
  /** RUNNING -> PRE_COPY: the saving data fd. 0 or -errno. */
  startPrecopy(): number;
  /** The device runs for `seconds` of simulated time: its state changes and grows. */
  run(seconds: number): void;
  /**
   * One pre-copy round's share: VFIO_MIG_GET_PRECOPY_INFO, then read initial_bytes +
   * dirty_bytes from the data fd. The bytes read (they go on the wire), or -errno.
   */
  precopyRound(): number;
  /** What PRECOPY_INFO says is still to send (initial_bytes + dirty_bytes), or -errno. */
  pending(): number;
  /** MIG_DATA_SIZE: the device's full state size (what a STOP_COPY from scratch would send), or -errno. */
  dataSize(): number;
  /**
   * Stop-and-copy: PRE_COPY -> PRE_COPY_P2P -> STOP_COPY, then read the data fd to its end.
   * The bytes read (sent during downtime), or -errno.
   */
  stopCopy(): number;
}

/**
 * Creates the backend of one device. `pinnedRuns` are the [ramPage, npages] runs an
 * emulated device keeps pinned (empty for other kinds).
 */
export type BackendFactory = (spec: DeviceSpec, layout: GuestLayout, scenario: Scenario, pinnedRuns: ReadonlyArray<[number, number]>) => DeviceBackend;

/** The factory for each device kind. */
export type BackendTable = Readonly<Record<DeviceKind, BackendFactory>>;
