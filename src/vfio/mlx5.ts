/**
 * An mlx5-like VF: the migration and DMA-logging parts of the kernel's mlx5 VFIO variant
 * driver (drivers/vfio/pci/mlx5/{main.c,cmd.c,cmd.h}). MODELLED FROM SOURCE, NOT RECORDED:
 * no test kernel runs an mlx5 VF under emulation, so nothing here was checked against a
 * kernel; every rule below cites the function it comes from. The firmware (page tracker,
 * SAVE/LOAD_VHCA_STATE) is a model of what the driver asks of it, with capabilities given
 * as options because their values live in firmware, not in the driver.
 *
 * DMA logging (mlx5vf_start_page_tracker, mlx5vf_create_tracker, ..._read_and_clear):
 * - a second START while one is active: EINVAL (log_active); STOP always succeeds;
 * - more ranges than `pg_track_max_num_range`: the driver merges them itself with the
 *   core's vfio_combine_iova_ranges() (the smallest gaps first; one range: first start to
 *   last end), so START never fails for "too many ranges" below LOG_MAX_RANGES (the
 *   core's E2BIG) — a VMM that merges first (QEMU) only decides *which* gaps get tracked;
 * - each range is programmed with length `last - start` (one byte short, as the driver
 *   computes it), and ilog2 of the summed lengths must lie within the firmware's
 *   [pg_track_log_min_addr_space, pg_track_log_max_addr_space]: else EOPNOTSUPP;
 * - the page size hint is clamped to [pg_track_log_min_page_size, ..._max_page_size] and
 *   the chosen size goes back to the user;
 * - the device's DMA writes (`dma`) are recorded only while logging is active and only
 *   for bytes inside an armed range: a write outside every armed range is never reported
 *   (how Cloud Hypervisor #8567 loses a mapping created after START);
 * - REPORT without an active tracker: EINVAL; a tracker in error: EIO; otherwise every
 *   recorded page in [iova, iova + length) is iova_bitmap_set() at the tracked page size
 *   and forgotten (read and clear).
 *
 * Migration (mlx5vf_pci_step_device_state_locked, mlx5vf_precopy_ioctl, mlx5vf_save_read,
 * mlx5vf_resume_write): STOP_COPY | P2P | PRE_COPY (PRE_COPY only on a 6.2+ core). The
 * saving stream is a list of records, each a 16-byte struct mlx5_vf_migration_header
 * (record_size u64, flags u32, tag u32) then its data: first the optional STOP_COPY_SIZE
 * record (8 bytes: the stop-copy buffer size, the state size +10% when tracking, in
 * pages), then FW_DATA records holding device images. On a 6.1 core the stream is the
 * bare image (no records: the driver had none before PRE_COPY).
 * - RUNNING -> PRE_COPY saves the full image with tracking; initial_bytes is everything
 *   up to the end of that image (the STOP_COPY_SIZE record + header + image);
 * - VFIO_MIG_GET_PRECOPY_INFO: in PRE_COPY the device is queried for its incremental
 *   size `inc` (the device state dirtied since the last save; PRE_COPY_P2P: 0). Before
 *   the initial bytes are read, initial_bytes = what is left of them; after,
 *   dirty_bytes = unread bytes + inc; when nothing is left unread and inc > 0 a new
 *   incremental FW_DATA record is saved *after* answering (so the next read sees it);
 * - read at the end of the data: ENOMSG while PRE_COPY (temporary end), 0 once complete;
 * - PRE_COPY_P2P -> STOP_COPY appends the final incremental image and returns no new fd;
 *   STOP -> STOP_COPY opens a file with the STOP_COPY_SIZE record and the full image;
 * - MIG_DATA_SIZE answers the full state size; a failed arc leaves the state at the last
 *   good arc (mlx5 never enters ERROR); RESET and close disable the data files.
 *
 * The device state is a size model: `imageBytes` (the full state, growing as the device
 * runs: `runState`) and the bytes dirtied since the last tracked save. Image contents are
 * generated from a per-image seed, so a stream can be checked after a resume without
 * holding megabytes.
 */
import { Errno, kernelFailure, type KernelResult } from "../uapi/errno";
import {
  DeviceInfo,
  PrecopyInfo,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_STATE_PRE_COPY,
  VFIO_DEVICE_STATE_PRE_COPY_P2P,
  VFIO_DEVICE_STATE_RESUMING,
  VFIO_DEVICE_STATE_RUNNING,
  VFIO_DEVICE_STATE_RUNNING_P2P,
  VFIO_DEVICE_STATE_STOP,
  VFIO_DEVICE_STATE_STOP_COPY,
  VFIO_MIG_GET_PRECOPY_INFO,
  VFIO_MIGRATION_P2P,
  VFIO_MIGRATION_PRE_COPY,
  VFIO_MIGRATION_STOP_COPY,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_NUM_REGIONS,
  accessOk,
} from "../uapi/vfio";
import type { FileOps, UserAccess } from "../process/file";
import { fget, fput } from "../process/fref";
import type { IovaBitmapSet, VfioDeviceDriver, VfioLogOps, VfioLogRange, VfioMigrationFile, VfioMigrationOps } from "./driver";
import { vfioMigrationSetState, type VfioMigrationStepper } from "./mig-fsm";
import { VFIO_CORE_LINUX_6_12, type VfioCoreProfile } from "./profile";

const PAGE = 4096n;
const U64 = (1n << 64n) - 1n;
/** MAX_RW_COUNT. */
const MAX_RW_COUNT = 0x7ffff000;
/** sizeof(struct mlx5_vf_migration_header). */
export const MLX5_MIGF_HEADER_SIZE = 16;
/** enum mlx5vf_migf_header_flags / _tags. */
export const MLX5_MIGF_HEADER_FLAGS_TAG_MANDATORY = 0;
export const MLX5_MIGF_HEADER_FLAGS_TAG_OPTIONAL = 1;
export const MLX5_MIGF_HEADER_TAG_FW_DATA = 0;
export const MLX5_MIGF_HEADER_TAG_STOP_COPY_SIZE = 1;
/** MAX_LOAD_SIZE: BIT_ULL(bit size of load_vhca_state_in.size = 32) - PAGE_SIZE. */
const MAX_LOAD_SIZE = (1n << 32n) - PAGE;
/** 6.1's MAX_MIGRATION_SIZE (a bare image at most 512 MiB). */
const MAX_MIGRATION_SIZE_6_1 = 512n * 1024n * 1024n;

/** ilog2() of a u64 as the driver stores it in a u8: ilog2(0) is -1, i.e. 255. */
function ilog2u8(v: bigint): number {
  if (v <= 0n) return 255;
  let n = -1;
  while (v > 0n) {
    v >>= 1n;
    n++;
  }
  return n;
}

/**
 * vfio_combine_iova_ranges() (drivers/vfio/vfio_main.c, 6.6+; mlx5's combine_ranges()
 * before): reduces sorted, disjoint ranges to `reqNodes` by merging across the smallest
 * gap, the first such gap on a tie; one range asked for: [first start, last end].
 */
export function vfioCombineIovaRanges(ranges: readonly VfioLogRange[], reqNodes: number): VfioLogRange[] {
  let out = ranges.map((r) => ({ start: r.start, last: r.last }));
  if (out.length <= reqNodes || out.length === 0) return out;
  if (reqNodes === 1) return [{ start: out[0].start, last: out[out.length - 1].last }];
  while (out.length > reqNodes) {
    let minGap = U64;
    let at = 1;
    for (let i = 1; i < out.length; i++) {
      const gap = out[i].start - out[i - 1].last; // unsigned long: never negative for disjoint sorted ranges
      if (gap < minGap) {
        minGap = gap;
        at = i;
      }
    }
    out = [...out.slice(0, at - 1), { start: out[at - 1].start, last: out[at].last }, ...out.slice(at + 1)];
  }
  return out;
}

/** MLX5_CAP_ADV_VIRTUALIZATION fields the tracker reads (firmware values: options here). */
export interface Mlx5PageTrackCaps {
  /** pg_track_max_num_range. */
  maxNumRange: number;
  /** pg_track_log_min_page_size / pg_track_log_max_page_size. */
  logMinPageSize: number;
  logMaxPageSize: number;
  /** pg_track_log_min_addr_space / pg_track_log_max_addr_space. */
  logMinAddrSpace: number;
  logMaxAddrSpace: number;
}

/** The model's default capabilities (a choice, not a measured device). */
export const MLX5_DEFAULT_CAPS: Mlx5PageTrackCaps = {
  maxNumRange: 4,
  logMinPageSize: 12,
  logMaxPageSize: 30,
  logMinAddrSpace: 12,
  logMaxAddrSpace: 50,
};

/** Options of an mlx5-like VF. */
export interface Mlx5Options {
  /** The VFIO core it registers with (default Linux 6.12's; 6.1: no PRE_COPY, bare stream). */
  profile?: VfioCoreProfile;
  caps?: Partial<Mlx5PageTrackCaps>;
  /** The device's state size at start (bytes; default 1 MiB). */
  imageBytes?: bigint;
}

/** One piece of a saving stream: fixed bytes (a header record) or a generated image. */
interface StreamBuf {
  start: bigint;
  length: bigint;
  bytes?: Uint8Array;
  seed?: number;
}

/** Byte `off` of the image with `seed` (deterministic, so a resume can be checked). */
export function mlx5ImageByte(seed: number, off: bigint): number {
  return (seed * 131 + Number(off % 251n)) & 0xff;
}

function header(recordSize: bigint, flags: number, tag: number): Uint8Array {
  const b = new Uint8Array(MLX5_MIGF_HEADER_SIZE);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, recordSize, true);
  dv.setUint32(8, flags, true);
  dv.setUint32(12, tag, true);
  return b;
}

/** struct mlx5_vf_migration_file: a saving (read-only) or resuming (write-only) stream. */
export class Mlx5MigrationFile implements FileOps {
  /** migf->state: "pre_copy" (more may come), "complete", "error" (disabled or failed). */
  state: "pre_copy" | "complete" | "error" = "pre_copy";
  /** f_pos. */
  pos = 0n;
  /** migf->max_pos: bytes produced (saving) or consumed into records (resuming). */
  maxPos = 0n;
  preCopyInitialBytes = 0n;
  readonly bufs: StreamBuf[] = [];
  // ---- resuming ----
  private loadState: "header" | "header_data" | "image" = "header";
  private hdr = new Uint8Array(MLX5_MIGF_HEADER_SIZE);
  private hdrLen = 0;
  private recordSize = 0n;
  private recordTag = 0;
  private recordGot = 0n;
  private firstImageByte = -1;
  /** A 6.1 bare stream: its length so far. */
  rawLength = 0n;
  /** FW_DATA images loaded from this resuming stream. */
  imagesLoaded = 0;

  constructor(
    private readonly dev: Mlx5Device,
    readonly mode: "save" | "resume",
  ) {}

  /** Appends a record piece to a saving stream. */
  push(b: Omit<StreamBuf, "start">): void {
    this.bufs.push({ ...b, start: this.maxPos });
    this.maxPos += b.length;
  }

  /** mlx5vf_disable_fd(). */
  disable(): void {
    this.state = "error";
    this.pos = 0n;
  }

  /** vfs_read() then mlx5vf_save_read() (never blocks: the model's saves finish at once). */
  read(task: UserAccess, buf: bigint, count: number): number {
    if (this.mode !== "save") return -Errno.EBADF;
    if (!accessOk(buf, BigInt(count))) return -Errno.EFAULT;
    count = Math.min(count, MAX_RW_COUNT);
    if (this.state === "error") return -Errno.ENODEV;
    const avail = this.maxPos - this.pos;
    if (avail <= 0n) return this.state === "pre_copy" ? -Errno.ENOMSG : 0;
    const n = Number(avail < BigInt(count) ? avail : BigInt(count));
    const out = new Uint8Array(n);
    this.fill(out, this.pos);
    if (task.copyToUser(buf, out) !== 0) return -Errno.EFAULT;
    this.pos += BigInt(n);
    return n;
  }

  /** Bytes [p, p + out.length) of the stream, a piece at a time (the same bytes as byteAt). */
  private fill(out: Uint8Array, p: bigint): void {
    let i = 0;
    for (const b of this.bufs) {
      if (i >= out.length) break;
      const at = p + BigInt(i);
      if (at < b.start || at >= b.start + b.length) continue;
      const off = Number(at - b.start);
      const n = Math.min(out.length - i, Number(b.length) - off);
      if (b.bytes) out.set(b.bytes.subarray(off, off + n), i);
      else {
        const base = ((b.seed ?? 0) * 131) | 0;
        let m = off % 251;
        for (let k = 0; k < n; k++) {
          out[i + k] = (base + m) & 0xff;
          if (++m === 251) m = 0;
        }
      }
      i += n;
    }
  }

  private byteAt(p: bigint): number {
    for (const b of this.bufs) {
      if (p < b.start || p >= b.start + b.length) continue;
      const off = p - b.start;
      return b.bytes ? b.bytes[Number(off)] : mlx5ImageByte(b.seed ?? 0, off);
    }
    return 0;
  }

  /** vfs_write() then mlx5vf_resume_write() (6.2+ records; 6.1 a bare image). */
  write(task: UserAccess, buf: bigint, count: number): number {
    if (this.mode !== "resume") return -Errno.EBADF;
    if (!accessOk(buf, BigInt(count))) return -Errno.EFAULT;
    count = Math.min(count, MAX_RW_COUNT);
    if (!this.dev.preCopySupported) {
      if (this.pos + BigInt(count) > MAX_MIGRATION_SIZE_6_1) return -Errno.ENOMEM;
      if (this.state === "error") return -Errno.ENODEV;
      const b = task.copyFromUser(buf, count);
      if (!b) return -Errno.EFAULT;
      if (this.rawLength === 0n && count > 0) this.firstImageByte = b[0];
      this.pos += BigInt(count);
      this.rawLength += BigInt(count);
      return count;
    }
    if (this.state === "error") return -Errno.ENODEV;
    const b = task.copyFromUser(buf, count);
    if (!b) return -Errno.EFAULT;
    let i = 0;
    while (i < b.length) {
      if (this.loadState === "header") {
        const n = Math.min(b.length - i, MLX5_MIGF_HEADER_SIZE - this.hdrLen);
        this.hdr.set(b.subarray(i, i + n), this.hdrLen);
        this.hdrLen += n;
        i += n;
        this.pos += BigInt(n);
        if (this.hdrLen < MLX5_MIGF_HEADER_SIZE) break;
        const dv = new DataView(this.hdr.buffer);
        const size = dv.getBigUint64(0, true);
        const flags = dv.getUint32(8, true);
        const tag = dv.getUint32(12, true);
        if (size > MAX_LOAD_SIZE) return this.fail(Errno.ENOMEM);
        if (tag !== MLX5_MIGF_HEADER_TAG_FW_DATA && tag !== MLX5_MIGF_HEADER_TAG_STOP_COPY_SIZE && !(flags & MLX5_MIGF_HEADER_FLAGS_TAG_OPTIONAL))
          return this.fail(Errno.EOPNOTSUPP);
        this.recordSize = size;
        this.recordTag = tag;
        this.recordGot = 0n;
        this.firstImageByte = -1;
        this.hdrLen = 0;
        this.maxPos += BigInt(MLX5_MIGF_HEADER_SIZE);
        this.loadState = tag === MLX5_MIGF_HEADER_TAG_FW_DATA ? "image" : "header_data";
      } else {
        const left = this.recordSize - this.recordGot;
        const n = Number(left < BigInt(b.length - i) ? left : BigInt(b.length - i));
        if (n > 0 && this.recordGot === 0n) this.firstImageByte = b[i];
        this.recordGot += BigInt(n);
        i += n;
        this.pos += BigInt(n);
      }
      if ((this.loadState as string) !== "header" && this.recordGot === this.recordSize) {
        // MLX5_VF_LOAD_STATE_LOAD_IMAGE: a complete FW_DATA record is loaded at once.
        if (this.loadState === "image") this.dev.loadImage(this.recordSize, this.firstImageByte);
        this.maxPos += this.recordSize;
        this.loadState = "header";
      }
    }
    return count;
  }

  /** A bad header part way through a write: the bytes before it stay consumed, the call fails. */
  private fail(errno: number): number {
    return -errno;
  }

  /** 6.1: RESUMING -> STOP loads the bare image written so far. */
  loadRaw(): KernelResult<void> {
    if (this.rawLength === 0n) return kernelFailure(Errno.EINVAL);
    this.dev.loadImage(this.rawLength, this.firstImageByte);
    return { ok: true, value: undefined };
  }

  /** mlx5vf_precopy_ioctl(). */
  ioctl(task: UserAccess, cmd: number, arg: bigint): number {
    if (this.mode !== "save" || cmd !== VFIO_MIG_GET_PRECOPY_INFO) return -Errno.ENOTTY;
    const b = task.copyFromUser(arg, PrecopyInfo.SIZE);
    if (!b) return -Errno.EFAULT;
    const dv = new DataView(b.buffer, b.byteOffset, PrecopyInfo.SIZE);
    if (dv.getUint32(PrecopyInfo.argsz, true) < PrecopyInfo.SIZE) return -Errno.EINVAL;
    const st = this.dev.state;
    if (st !== VFIO_DEVICE_STATE_PRE_COPY && st !== VFIO_DEVICE_STATE_PRE_COPY_P2P) return -Errno.EINVAL;
    // PRE_COPY_P2P: the device is suspended, no SAVE can run, so no incremental query.
    const inc = st === VFIO_DEVICE_STATE_PRE_COPY ? this.dev.queryIncLength() : 0n;
    if (this.state === "error") return -Errno.ENODEV;
    let initial = 0n;
    let dirty = 0n;
    let endOfData = false;
    if (this.preCopyInitialBytes > this.pos) initial = this.preCopyInitialBytes - this.pos;
    else {
      dirty = this.maxPos - this.pos;
      if (dirty === 0n) endOfData = true;
      dirty += inc;
    }
    // struct vfio_precopy_info as the caller wrote it (argsz, flags) plus the two counts.
    dv.setBigUint64(PrecopyInfo.initial_bytes, initial, true);
    dv.setBigUint64(PrecopyInfo.dirty_bytes, dirty, true);
    if (endOfData && inc > 0n) this.dev.saveIncremental(this, false);
    return task.copyToUser(arg, b) === 0 ? 0 : -Errno.EFAULT;
  }

  release(): void {
    this.disable();
  }
}

/** What a simulated DMA write did. */
export type Mlx5DmaOutcome =
  /** Recorded in the tracker (at least one byte inside an armed range). */
  | "logged"
  /** Performed but not recorded: logging off, or no byte inside an armed range. */
  | "untracked"
  /** Not performed: the device is quiesced (RUNNING_P2P and below initiate no DMA) or it was a read. */
  | "none";

/** struct mlx5vf_pci_core_device's migration and tracker parts. */
export class Mlx5Device implements VfioDeviceDriver, VfioMigrationOps, VfioLogOps, VfioMigrationStepper {
  readonly name = "mlx5-vfio-pci";
  readonly migrationFlags: number;
  readonly migOps: VfioMigrationOps = this;
  readonly logOps: VfioLogOps = this;
  readonly profile: VfioCoreProfile;
  readonly caps: Mlx5PageTrackCaps;
  /** MLX5VF_PRE_COPY_SUPP(): the PRE_COPY states and the record stream (6.2+). */
  readonly preCopySupported: boolean;
  /** mvdev->mig_state. */
  state = VFIO_DEVICE_STATE_RUNNING;
  /** The device's full state size (what a full SAVE_VHCA_STATE produces). */
  imageBytes: bigint;
  /** Device state changed since the last tracked save (the incremental query's answer). */
  dirtyStateBytes = 0n;
  /** The images loaded while RESUMING, in order: their size and first byte (-1: empty). */
  readonly loaded: { bytes: bigint; firstByte: number }[] = [];
  // ---- tracker ----
  /** mvdev->log_active. */
  logActive = false;
  /** tracker->is_err (a firmware tracker error; `injectTrackerError`). */
  trackerError = false;
  /** The ranges as programmed into the firmware: [start, end) with end = last (one byte short). */
  armed: { start: bigint; end: bigint }[] = [];
  /** host_qp->tracked_page_size. */
  trackedPageSize = PAGE;
  private trackedShift = 12n;
  /** Dirty pages (their index at the tracked page size). */
  private readonly dirty = new Set<bigint>();
  // ---- files ----
  private savingMigf: Mlx5MigrationFile | null = null;
  private resumingMigf: Mlx5MigrationFile | null = null;
  private seed = 1;

  constructor(opts: Mlx5Options = {}) {
    this.profile = opts.profile ?? VFIO_CORE_LINUX_6_12;
    this.caps = { ...MLX5_DEFAULT_CAPS, ...opts.caps };
    this.preCopySupported = this.profile.numStates > 6;
    this.migrationFlags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | (this.preCopySupported ? VFIO_MIGRATION_PRE_COPY : 0);
    this.imageBytes = opts.imageBytes ?? 1n << 20n;
  }

  // ---- the simulated workload ----

  /**
   * The device DMAs [iova, iova + length): a write while the device may initiate DMA
   * (RUNNING, PRE_COPY) and logging is active marks every tracked page holding a written
   * byte inside an armed range. Returns what happened; never fails.
   */
  dma(iova: bigint, length: bigint, write: boolean): Mlx5DmaOutcome {
    if (!write || length <= 0n) return "none";
    if (this.state !== VFIO_DEVICE_STATE_RUNNING && this.state !== VFIO_DEVICE_STATE_PRE_COPY) return "none";
    if (!this.logActive || this.trackerError) return "untracked";
    const last = iova + length; // exclusive
    let hit = false;
    for (const r of this.armed) {
      const lo = iova > r.start ? iova : r.start;
      const hi = last < r.end ? last : r.end;
      if (hi <= lo) continue;
      hit = true;
      for (let p = lo >> this.trackedShift; p <= (hi - 1n) >> this.trackedShift; p++) this.dirty.add(p);
    }
    return hit ? "logged" : "untracked";
  }

  /**
   * The device runs: `dirtyBytes` of its state change (capped at the state's size) and
   * the state grows by `growBytes`. Only a running device (RUNNING, PRE_COPY, RUNNING_P2P)
   * changes state; returns whether it did.
   */
  runState(dirtyBytes: bigint, growBytes = 0n): boolean {
    const s = this.state;
    if (s !== VFIO_DEVICE_STATE_RUNNING && s !== VFIO_DEVICE_STATE_PRE_COPY && s !== VFIO_DEVICE_STATE_RUNNING_P2P) return false;
    if (growBytes > 0n) this.imageBytes += growBytes;
    const d = this.dirtyStateBytes + (dirtyBytes > 0n ? dirtyBytes : 0n) + (growBytes > 0n ? growBytes : 0n);
    this.dirtyStateBytes = d < this.imageBytes ? d : this.imageBytes;
    return true;
  }

  /** A firmware tracker error (a CQ or QP error event): later REPORTs answer EIO. */
  injectTrackerError(): void {
    if (this.logActive) this.trackerError = true;
  }

  /** How many tracked pages are recorded and not yet reported (cheap: no sort). */
  get dirtyPageCount(): number {
    return this.dirty.size;
  }

  /** Pages recorded and not yet reported, as IOVAs (sorted). */
  dirtyIovas(): bigint[] {
    return [...this.dirty].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((p) => p << this.trackedShift);
  }

  // ---- vfio_device_ops ----

  /** vfio_pci_core_ioctl(): GET_INFO and RESET (regions and irqs not modelled: ENOTTY). */
  ioctl(task: UserAccess, cmd: number, arg: bigint): number {
    if (cmd === VFIO_DEVICE_GET_INFO) {
      const b = task.copyFromUser(arg, DeviceInfo.MINSZ);
      if (!b) return -Errno.EFAULT;
      const dv = new DataView(b.buffer, b.byteOffset, DeviceInfo.MINSZ);
      if (dv.getUint32(DeviceInfo.argsz, true) < DeviceInfo.MINSZ) return -Errno.EINVAL;
      dv.setUint32(DeviceInfo.flags, VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET, true);
      dv.setUint32(DeviceInfo.num_regions, VFIO_PCI_NUM_REGIONS, true);
      dv.setUint32(DeviceInfo.num_irqs, VFIO_PCI_NUM_IRQS, true);
      return task.copyToUser(arg, b) === 0 ? 0 : -Errno.EFAULT;
    }
    if (cmd === VFIO_DEVICE_RESET) {
      this.reset();
      return 0;
    }
    return -Errno.ENOTTY;
  }

  /** mlx5vf_pci_open_device(): mig_state = RUNNING. */
  openDevice(): number {
    this.state = VFIO_DEVICE_STATE_RUNNING;
    return 0;
  }

  /** mlx5vf_pci_close_device() -> mlx5vf_cmd_close_migratable(): files disabled, tracker freed. */
  closeDevice(): void {
    this.disableFds();
    this.freeTracker();
  }

  /** mlx5vf_pci_aer_reset_done() (the deferred reset): RUNNING, files disabled. */
  reset(): void {
    this.state = VFIO_DEVICE_STATE_RUNNING;
    this.disableFds();
  }

  // ---- vfio_migration_ops ----

  /** mlx5vf_pci_set_device_state(): arc by arc; a failed arc leaves the last good state. */
  migrationSetState(newState: number): KernelResult<VfioMigrationFile | null> {
    return vfioMigrationSetState(this, newState, this.profile.numStates, "stay");
  }

  migrationGetState(): KernelResult<number> {
    return { ok: true, value: this.state };
  }

  /** mlx5vf_pci_get_data_size(): the full state size. */
  migrationGetDataSize(): KernelResult<bigint> {
    return { ok: true, value: this.imageBytes };
  }

  // ---- vfio_log_ops ----

  /** mlx5vf_start_page_tracker() + mlx5vf_create_tracker(). */
  logStart(ranges: readonly VfioLogRange[], pageSize: bigint): KernelResult<bigint> {
    if (this.logActive) return kernelFailure(Errno.EINVAL);
    let log = ilog2u8(pageSize);
    if (log < this.caps.logMinPageSize) log = this.caps.logMinPageSize;
    else if (log > this.caps.logMaxPageSize) log = this.caps.logMaxPageSize;
    const nodes = ranges.length > this.caps.maxNumRange ? vfioCombineIovaRanges(ranges, this.caps.maxNumRange) : ranges;
    let total = 0n;
    for (const n of nodes) total = (total + (n.last - n.start)) & U64;
    const logAddr = ilog2u8(total);
    if (logAddr < this.caps.logMinAddrSpace || logAddr > this.caps.logMaxAddrSpace) return kernelFailure(Errno.EOPNOTSUPP);
    this.armed = nodes.map((n) => ({ start: n.start, end: n.last }));
    this.trackedShift = BigInt(log);
    this.trackedPageSize = 1n << this.trackedShift;
    this.dirty.clear();
    this.trackerError = false;
    this.logActive = true;
    return { ok: true, value: this.trackedPageSize };
  }

  /** mlx5vf_stop_page_tracker(): always 0. */
  logStop(): KernelResult<void> {
    this.freeTracker();
    return { ok: true, value: undefined };
  }

  /** mlx5vf_tracker_read_and_clear(). */
  logReadAndClear(iova: bigint, length: bigint, dirty: IovaBitmapSet): KernelResult<void> {
    if (!this.logActive) return kernelFailure(Errno.EINVAL);
    if (this.trackerError) return kernelFailure(Errno.EIO);
    const end = iova + length;
    for (const p of [...this.dirty].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
      const a = p << this.trackedShift;
      // The firmware reports the tracked pages of the range asked for (MODIFY_PAGE_TRACK's range).
      if (a + this.trackedPageSize <= iova || a >= end) continue;
      dirty.set(a, this.trackedPageSize);
      this.dirty.delete(p);
    }
    return { ok: true, value: undefined };
  }

  private freeTracker(): void {
    this.logActive = false;
    this.trackerError = false;
    this.armed = [];
    this.dirty.clear();
  }

  // ---- the arcs: mlx5vf_pci_step_device_state_locked() ----

  stepState(next: number): KernelResult<VfioMigrationFile | null> {
    const cur = this.state;
    const ok = (f: VfioMigrationFile | null = null): KernelResult<VfioMigrationFile | null> => ({ ok: true, value: f });
    const is = (a: number, b: number): boolean => cur === a && next === b;
    // SUSPEND/RESUME_VHCA (initiator or responder): nothing the model's firmware can refuse.
    if (
      is(VFIO_DEVICE_STATE_RUNNING_P2P, VFIO_DEVICE_STATE_STOP) ||
      is(VFIO_DEVICE_STATE_STOP, VFIO_DEVICE_STATE_RUNNING_P2P) ||
      is(VFIO_DEVICE_STATE_RUNNING, VFIO_DEVICE_STATE_RUNNING_P2P) ||
      is(VFIO_DEVICE_STATE_PRE_COPY, VFIO_DEVICE_STATE_PRE_COPY_P2P) ||
      is(VFIO_DEVICE_STATE_RUNNING_P2P, VFIO_DEVICE_STATE_RUNNING) ||
      is(VFIO_DEVICE_STATE_PRE_COPY_P2P, VFIO_DEVICE_STATE_PRE_COPY)
    )
      return ok();
    if (is(VFIO_DEVICE_STATE_STOP, VFIO_DEVICE_STATE_STOP_COPY)) return ok(this.saveDeviceData(false));
    if (is(VFIO_DEVICE_STATE_STOP_COPY, VFIO_DEVICE_STATE_STOP)) {
      this.disableFds();
      return ok();
    }
    if (is(VFIO_DEVICE_STATE_STOP, VFIO_DEVICE_STATE_RESUMING)) {
      const f = new Mlx5MigrationFile(this, "resume");
      fget(f); // mvdev->resuming_migf
      this.resumingMigf = f;
      fget(f);
      return ok(f);
    }
    if (is(VFIO_DEVICE_STATE_RESUMING, VFIO_DEVICE_STATE_STOP)) {
      // 6.2+: images were loaded as their records completed; 6.1 loads the bare stream now.
      if (!this.preCopySupported && this.resumingMigf) {
        const r = this.resumingMigf.loadRaw();
        if (!r.ok) return r;
      }
      this.disableFds();
      return ok();
    }
    if (is(VFIO_DEVICE_STATE_PRE_COPY, VFIO_DEVICE_STATE_RUNNING) || is(VFIO_DEVICE_STATE_PRE_COPY_P2P, VFIO_DEVICE_STATE_RUNNING_P2P)) {
      this.disableFds();
      return ok();
    }
    if (is(VFIO_DEVICE_STATE_RUNNING, VFIO_DEVICE_STATE_PRE_COPY) || is(VFIO_DEVICE_STATE_RUNNING_P2P, VFIO_DEVICE_STATE_PRE_COPY_P2P))
      return ok(this.saveDeviceData(true));
    if (is(VFIO_DEVICE_STATE_PRE_COPY_P2P, VFIO_DEVICE_STATE_STOP_COPY)) {
      const f = this.savingMigf;
      if (!f || f.state === "error") return kernelFailure(Errno.ENODEV);
      this.saveIncremental(f, true);
      return ok();
    }
    return kernelFailure(Errno.EINVAL); // vfio_mig_get_next_state() never asks for another arc
  }

  /**
   * mlx5vf_cmd_query_vhca_migration_state(MLX5VF_QUERY_INC): the incremental image size,
   * the device state dirtied since the last tracked save.
   */
  queryIncLength(): bigint {
    return this.dirtyStateBytes;
  }

  /** mlx5vf_pci_save_device_data(): a new saving file with the STOP_COPY_SIZE record and the full image. */
  private saveDeviceData(track: boolean): Mlx5MigrationFile {
    const f = new Mlx5MigrationFile(this, "save");
    const length = this.imageBytes;
    if (this.preCopySupported) {
      // mlx5vf_prep_stop_copy(): +10% when tracking (the state may grow), in whole pages.
      const inc = track ? length + length / 10n : length;
      const stopCopySize = ((inc + PAGE - 1n) / PAGE) * PAGE;
      const rec = new Uint8Array(MLX5_MIGF_HEADER_SIZE + 8);
      rec.set(header(8n, MLX5_MIGF_HEADER_FLAGS_TAG_OPTIONAL, MLX5_MIGF_HEADER_TAG_STOP_COPY_SIZE));
      new DataView(rec.buffer).setBigUint64(MLX5_MIGF_HEADER_SIZE, stopCopySize, true);
      f.push({ length: BigInt(rec.length), bytes: rec });
      if (track) f.preCopyInitialBytes = BigInt(rec.length);
      // mlx5vf_save_callback(): the first image of a PRE_COPY session counts as initial bytes.
      f.push({ length: BigInt(MLX5_MIGF_HEADER_SIZE), bytes: header(length, MLX5_MIGF_HEADER_FLAGS_TAG_MANDATORY, MLX5_MIGF_HEADER_TAG_FW_DATA) });
      f.push({ length, seed: this.seed++ });
      if (track) f.preCopyInitialBytes += BigInt(MLX5_MIGF_HEADER_SIZE) + length;
    } else {
      f.push({ length, seed: this.seed++ });
    }
    this.dirtyStateBytes = 0n;
    f.state = track ? "pre_copy" : "complete";
    fget(f); // mvdev->saving_migf
    this.savingMigf = f;
    fget(f); // the caller's
    return f;
  }

  /**
   * mlx5vf_cmd_save_vhca_state(inc = true): a FW_DATA record of the state dirtied since
   * the last save; `last` (the stop-copy one, track = false) completes the stream.
   */
  saveIncremental(f: Mlx5MigrationFile, last: boolean): void {
    const len = this.dirtyStateBytes;
    f.push({ length: BigInt(MLX5_MIGF_HEADER_SIZE), bytes: header(len, MLX5_MIGF_HEADER_FLAGS_TAG_MANDATORY, MLX5_MIGF_HEADER_TAG_FW_DATA) });
    if (len > 0n) f.push({ length: len, seed: this.seed++ });
    this.dirtyStateBytes = 0n;
    if (last) f.state = "complete";
  }

  /** MLX5_VF_LOAD_STATE_LOAD_IMAGE / LOAD_VHCA_STATE: the device takes the image. */
  loadImage(bytes: bigint, firstByte: number): void {
    // The first image of a stream is the full state; later ones are increments over it.
    if (this.resumingMigf && this.resumingMigf.imagesLoaded++ === 0) this.imageBytes = bytes;
    this.loaded.push({ bytes, firstByte });
  }

  /** mlx5vf_disable_fds(): both files disabled, the driver's references dropped. */
  private disableFds(): void {
    for (const f of [this.savingMigf, this.resumingMigf]) {
      if (!f) continue;
      f.disable();
      fput(f);
    }
    this.savingMigf = this.resumingMigf = null;
  }
}
