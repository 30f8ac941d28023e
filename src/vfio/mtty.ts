/**
 * An mtty-like device: the migration and DMA-logging parts of the kernel's mtty sample
 * (samples/vfio-mdev/mtty.c, migration since 6.7), a virtual PCI serial card with
 * `nrPorts` ports. Its migration stream is struct mtty_data: a 24-byte header (magic,
 * version, nr_ports, flags) then one 36-byte struct serial_port per port. Behaviour as the
 * sample has it (and as recorded on the 6.12 test kernel):
 *
 * - migration_flags STOP_COPY | P2P | PRE_COPY (PRE_COPY dropped on a 6.1 core, which
 *   lacks it); the state starts RUNNING and survives closing the device fd;
 * - RUNNING -> PRE_COPY opens the saving file holding the header only; PRE_COPY_P2P ->
 *   STOP_COPY appends the ports to that same file and returns no new fd; STOP ->
 *   STOP_COPY opens a file with header and ports; STOP -> RESUMING opens a write-only file;
 * - read past the filled bytes returns 0 (not ENOMSG: mtty has no "more data later");
 * - a failed arc (RESUMING -> STOP with a short stream) leaves the state where it was
 *   (mtty never enters ERROR); VFIO_DEVICE_RESET moves any state to RUNNING and disables
 *   open data files (their reads/writes then answer ENODEV);
 * - the log ops accept any ranges and report nothing;
 * - the sample's bug: leaving RESUMING after the device fd was closed and re-opened
 *   dereferences NULL (see `oops`).
 */
import { Errno, kernelFailure, type KernelResult } from "../uapi/errno";
import {
  DeviceInfo,
  PrecopyInfo,
  VFIO_DEVICE_FLAGS_PCI,
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

/** MTTY_MAGIC, MTTY_MAJOR_VER, MTTY_MINOR_VER. */
export const MTTY_MAGIC = 0x7e9d09898c3e2c4en;
const MTTY_MAJOR_VER = 1;
const MTTY_MINOR_VER = 0;
/** offsetof(struct mtty_data, ports) and sizeof(struct serial_port). */
export const MTTY_HEADER_SIZE = 24;
export const MTTY_PORT_SIZE = 36;
/** sizeof(struct mtty_data): the header and two ports, whatever nr_ports is. */
const MTTY_DATA_SIZE = MTTY_HEADER_SIZE + 2 * MTTY_PORT_SIZE;
/** MAX_RW_COUNT: INT_MAX rounded down to a page, what one read/write moves at most. */
const MAX_RW_COUNT = 0x7ffff000;
/** Offset of serial_port.max_fifo_size, and MAX_FIFO_SIZE. */
const PORT_MAX_FIFO_SIZE = 33;
const MAX_FIFO_SIZE = 16;

/** struct mtty_migration_file: one saving (read-only) or resuming (write-only) stream. */
export class MttyMigrationFile implements FileOps {
  /** struct mtty_data. */
  readonly data = new Uint8Array(MTTY_DATA_SIZE);
  filledSize = 0;
  disabled = false;
  /** f_pos (stream_open: read/write use it, pread/pwrite would get ESPIPE). */
  pos = 0;

  constructor(
    private readonly dev: MttyDevice,
    /** O_RDONLY (saving) or O_WRONLY (resuming). */
    readonly mode: "save" | "resume",
  ) {}

  /** mtty_disable_file(). */
  disable(): void {
    this.disabled = true;
    this.filledSize = 0;
    this.pos = 0;
  }

  /** vfs_read() (FMODE_READ, access_ok, MAX_RW_COUNT) then mtty_save_read(). */
  read(task: UserAccess, buf: bigint, count: number): number {
    if (this.mode !== "save") return -Errno.EBADF;
    if (!accessOk(buf, BigInt(count))) return -Errno.EFAULT;
    count = Math.min(count, MAX_RW_COUNT);
    if (this.disabled) return -Errno.ENODEV;
    if (this.pos > this.filledSize) return -Errno.EINVAL;
    const len = Math.min(this.filledSize - this.pos, count);
    if (len === 0) return 0;
    if (task.copyToUser(buf, this.data.slice(this.pos, this.pos + len)) !== 0) return -Errno.EFAULT;
    this.pos += len;
    return len;
  }

  /** vfs_write() (FMODE_WRITE, access_ok, MAX_RW_COUNT) then mtty_resume_write(). */
  write(task: UserAccess, buf: bigint, count: number): number {
    if (this.mode !== "resume") return -Errno.EBADF;
    if (!accessOk(buf, BigInt(count))) return -Errno.EFAULT;
    count = Math.min(count, MAX_RW_COUNT);
    const requested = this.pos + count;
    if (requested > this.dev.dataSize()) return -Errno.ENOMEM;
    if (this.disabled) return -Errno.ENODEV;
    const b = task.copyFromUser(buf, count);
    if (!b) return -Errno.EFAULT;
    this.data.set(b, this.pos);
    this.pos += count;
    let ret = count;
    if (this.filledSize < MTTY_HEADER_SIZE && this.filledSize + count >= MTTY_HEADER_SIZE) {
      const dv = new DataView(this.data.buffer);
      const bad =
        dv.getBigUint64(0, true) !== MTTY_MAGIC ||
        dv.getUint32(20, true) !== 0 ||
        dv.getUint32(8, true) !== MTTY_MAJOR_VER ||
        dv.getUint32(12, true) !== MTTY_MINOR_VER ||
        dv.getUint32(16, true) !== this.dev.nrPorts;
      // The bytes stay written and counted: only the return value says the header is bad.
      if (bad) ret = -Errno.EFAULT;
    }
    this.filledSize += count;
    return ret;
  }

  /** mtty_precopy_ioctl(): VFIO_MIG_GET_PRECOPY_INFO on a saving file; ENOTTY on a resuming one. */
  ioctl(task: UserAccess, cmd: number, arg: bigint): number {
    if (this.mode !== "save" || cmd !== VFIO_MIG_GET_PRECOPY_INFO) return -Errno.ENOTTY;
    const b = task.copyFromUser(arg, PrecopyInfo.SIZE);
    if (!b) return -Errno.EFAULT;
    const dv = new DataView(b.buffer, b.byteOffset, PrecopyInfo.SIZE);
    if (dv.getUint32(PrecopyInfo.argsz, true) < PrecopyInfo.SIZE) return -Errno.EINVAL;
    const st = this.dev.state;
    if (st !== VFIO_DEVICE_STATE_PRE_COPY && st !== VFIO_DEVICE_STATE_PRE_COPY_P2P) return -Errno.EINVAL;
    if (this.disabled) return -Errno.ENODEV;
    if (this.pos > this.filledSize) return -Errno.EINVAL;
    // The struct goes back as the caller wrote it (argsz, flags) with the two counts filled.
    dv.setBigUint64(PrecopyInfo.initial_bytes, BigInt(this.filledSize - this.pos), true);
    dv.setBigUint64(PrecopyInfo.dirty_bytes, 0n, true);
    return task.copyToUser(arg, b) === 0 ? 0 : -Errno.EFAULT;
  }

  /** mtty_release_migf(). */
  release(): void {
    this.disable();
  }
}

/** Options of an mtty-like device. */
export interface MttyOptions {
  /** Ports of the mdev type (mtty-1: 1, mtty-2: 2; default 2). */
  nrPorts?: 1 | 2;
  /** The VFIO core it registers with (default Linux 6.12's). */
  profile?: VfioCoreProfile;
}

/** struct mdev_state: the device, its driver ops, its migration and log ops. */
export class MttyDevice implements VfioDeviceDriver, VfioMigrationOps, VfioLogOps, VfioMigrationStepper {
  readonly name = "vfio-mtty";
  readonly migrationFlags: number;
  readonly migOps: VfioMigrationOps = this;
  readonly logOps: VfioLogOps = this;
  readonly nrPorts: number;
  readonly profile: VfioCoreProfile;
  /** enum vfio_device_mig_state. */
  state = VFIO_DEVICE_STATE_RUNNING;
  /** The serial ports' state (struct serial_port each), what STOP_COPY saves. */
  readonly ports: Uint8Array;
  private savingMigf: MttyMigrationFile | null = null;
  private resumingMigf: MttyMigrationFile | null = null;
  /**
   * Set when the sample's own bug oopses the kernel: closing the device in RESUMING drops
   * resuming_migf (mtty_close -> mtty_disable_files) but keeps the state, so leaving
   * RESUMING afterwards dereferences NULL in mtty_load_state(). Recorded on 6.12: the
   * calling process is killed. The model fails that call with EFAULT and records why here;
   * the kernel would also keep state_mutex held (later migration calls would block).
   */
  oops: string | null = null;

  constructor(opts: MttyOptions = {}) {
    this.nrPorts = opts.nrPorts ?? 2;
    this.profile = opts.profile ?? VFIO_CORE_LINUX_6_12;
    this.migrationFlags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | (this.profile.numStates > 6 ? VFIO_MIGRATION_PRE_COPY : 0);
    this.ports = new Uint8Array(2 * MTTY_PORT_SIZE);
    for (let i = 0; i < 2; i++) this.ports[i * MTTY_PORT_SIZE + PORT_MAX_FIFO_SIZE] = MAX_FIFO_SIZE;
  }

  /** mtty_data_size(). */
  dataSize(): number {
    return MTTY_HEADER_SIZE + this.nrPorts * MTTY_PORT_SIZE;
  }

  // ---- vfio_device_ops ----

  /** mtty_ioctl(): GET_INFO and RESET (regions and irqs are not modelled: ENOTTY). */
  ioctl(task: UserAccess, cmd: number, arg: bigint): number {
    if (cmd === VFIO_DEVICE_GET_INFO) {
      const b = task.copyFromUser(arg, DeviceInfo.MINSZ);
      if (!b) return -Errno.EFAULT;
      const dv = new DataView(b.buffer, b.byteOffset, DeviceInfo.MINSZ);
      if (dv.getUint32(DeviceInfo.argsz, true) < DeviceInfo.MINSZ) return -Errno.EINVAL;
      dv.setUint32(DeviceInfo.flags, VFIO_DEVICE_FLAGS_PCI, true);
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

  /** mtty_close(): the last close of the device disables the data files (the state stays). */
  closeDevice(): void {
    this.disableFiles();
  }

  /** mtty_reset() with its deferred reset run at once: RUNNING, data files disabled. */
  reset(): void {
    this.state = VFIO_DEVICE_STATE_RUNNING;
    this.disableFiles();
  }

  // ---- vfio_migration_ops ----

  /** mtty_set_state(): arc by arc; a failed arc stops there and the state stays at the last good one. */
  migrationSetState(newState: number): KernelResult<VfioMigrationFile | null> {
    return vfioMigrationSetState(this, newState, this.profile.numStates, "stay");
  }

  migrationGetState(): KernelResult<number> {
    return { ok: true, value: this.state };
  }

  /** mtty_get_data_size(). */
  migrationGetDataSize(): KernelResult<bigint> {
    return { ok: true, value: BigInt(this.dataSize()) };
  }

  // ---- vfio_log_ops: the sample accepts everything and reports nothing ----

  logStart(_ranges: readonly VfioLogRange[], pageSize: bigint): KernelResult<bigint> {
    return { ok: true, value: pageSize };
  }

  logStop(): KernelResult<void> {
    return { ok: true, value: undefined };
  }

  logReadAndClear(_iova: bigint, _length: bigint, _dirty: IovaBitmapSet): KernelResult<void> {
    return { ok: true, value: undefined };
  }

  // ---- the arcs ----

  /** mtty_step_state(): one arc. */
  stepState(next: number): KernelResult<VfioMigrationFile | null> {
    const cur = this.state;
    const ok = (f: VfioMigrationFile | null = null): KernelResult<VfioMigrationFile | null> => ({ ok: true, value: f });
    const is = (a: number, b: number): boolean => cur === a && next === b;
    if (
      is(VFIO_DEVICE_STATE_RUNNING, VFIO_DEVICE_STATE_RUNNING_P2P) ||
      is(VFIO_DEVICE_STATE_RUNNING_P2P, VFIO_DEVICE_STATE_RUNNING) ||
      is(VFIO_DEVICE_STATE_RUNNING_P2P, VFIO_DEVICE_STATE_STOP) ||
      is(VFIO_DEVICE_STATE_PRE_COPY, VFIO_DEVICE_STATE_PRE_COPY_P2P) ||
      is(VFIO_DEVICE_STATE_PRE_COPY_P2P, VFIO_DEVICE_STATE_PRE_COPY) ||
      is(VFIO_DEVICE_STATE_STOP, VFIO_DEVICE_STATE_RUNNING_P2P)
    )
      return ok();
    if (is(VFIO_DEVICE_STATE_RESUMING, VFIO_DEVICE_STATE_STOP)) {
      const r = this.loadState();
      if (!r.ok) return r;
      this.disableFiles();
      return ok();
    }
    if (
      is(VFIO_DEVICE_STATE_PRE_COPY, VFIO_DEVICE_STATE_RUNNING) ||
      is(VFIO_DEVICE_STATE_PRE_COPY_P2P, VFIO_DEVICE_STATE_RUNNING_P2P) ||
      is(VFIO_DEVICE_STATE_STOP_COPY, VFIO_DEVICE_STATE_STOP)
    ) {
      this.disableFiles();
      return ok();
    }
    if (
      is(VFIO_DEVICE_STATE_RUNNING, VFIO_DEVICE_STATE_PRE_COPY) ||
      is(VFIO_DEVICE_STATE_RUNNING_P2P, VFIO_DEVICE_STATE_PRE_COPY_P2P) ||
      is(VFIO_DEVICE_STATE_STOP, VFIO_DEVICE_STATE_STOP_COPY) ||
      is(VFIO_DEVICE_STATE_PRE_COPY_P2P, VFIO_DEVICE_STATE_STOP_COPY)
    ) {
      const f = this.saveDeviceData(next);
      if (f) fget(f); // get_file() for the caller
      return ok(f);
    }
    if (is(VFIO_DEVICE_STATE_STOP, VFIO_DEVICE_STATE_RESUMING)) {
      const f = new MttyMigrationFile(this, "resume");
      fget(f); // mdev_state->resuming_migf's reference
      this.resumingMigf = f;
      fget(f);
      return ok(f);
    }
    return kernelFailure(Errno.EINVAL); // vfio_mig_get_next_state() never asks for another arc
  }

  /** mtty_save_device_data(): the saving file (new, or the PRE_COPY one filled at STOP_COPY). */
  private saveDeviceData(next: number): MttyMigrationFile | null {
    let f = this.savingMigf;
    if (f) {
      if (next === VFIO_DEVICE_STATE_STOP_COPY) this.saveState(f);
      return null;
    }
    f = new MttyMigrationFile(this, "save");
    fget(f); // mdev_state->saving_migf's reference
    const dv = new DataView(f.data.buffer);
    dv.setBigUint64(0, MTTY_MAGIC, true);
    dv.setUint32(8, MTTY_MAJOR_VER, true);
    dv.setUint32(12, MTTY_MINOR_VER, true);
    dv.setUint32(16, this.nrPorts, true);
    f.filledSize = MTTY_HEADER_SIZE;
    this.savingMigf = f;
    if (next === VFIO_DEVICE_STATE_STOP_COPY) this.saveState(f);
    return f;
  }

  /** mtty_save_state(): the ports after the header. */
  private saveState(f: MttyMigrationFile): void {
    for (let i = 0; i < this.nrPorts; i++) {
      f.data.set(this.ports.subarray(i * MTTY_PORT_SIZE, (i + 1) * MTTY_PORT_SIZE), MTTY_HEADER_SIZE + i * MTTY_PORT_SIZE);
      f.filledSize += MTTY_PORT_SIZE;
    }
  }

  /** mtty_load_state(): EINVAL for a stream shorter than mtty_data_size(). */
  private loadState(): KernelResult<void> {
    const f = this.resumingMigf;
    if (!f) {
      this.oops = "BUG: kernel NULL pointer dereference in mtty_load_state (RESUMING left after the device fd was closed)";
      return kernelFailure(Errno.EFAULT);
    }
    if (f.filledSize < this.dataSize()) return kernelFailure(Errno.EINVAL);
    for (let i = 0; i < this.nrPorts; i++)
      this.ports.set(f.data.subarray(MTTY_HEADER_SIZE + i * MTTY_PORT_SIZE, MTTY_HEADER_SIZE + (i + 1) * MTTY_PORT_SIZE), i * MTTY_PORT_SIZE);
    return { ok: true, value: undefined };
  }

  /** mtty_disable_files(): both streams disabled and the driver's references dropped. */
  private disableFiles(): void {
    for (const f of [this.savingMigf, this.resumingMigf]) {
      if (!f) continue;
      f.disable();
      fput(f);
    }
    this.savingMigf = this.resumingMigf = null;
  }
}
