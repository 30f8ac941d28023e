/**
 * What a VFIO device driver implements for migration and DMA logging, after the kernel's
 * `struct vfio_migration_ops` and `struct vfio_log_ops` (include/linux/vfio.h). The core
 * (vfio-main.ts) owns the uAPI: argument checks, the PROBE/GET/SET rules, copying to and
 * from user memory, installing the data_fd. A driver owns the device: its state, its
 * migration stream, its dirty tracker.
 *
 * Kernel ops take `struct vfio_device *`; here the driver object is the device, so the
 * methods take no device argument. Errors are values: `KernelResult` with the errno the
 * kernel op would return as `-errno` / `ERR_PTR(-errno)`.
 */
import type { KernelResult } from "../uapi/errno";
import type { FileOps, UserAccess } from "../process/file";

/**
 * A migration data file (the `struct file` a saving or resuming arc returns): read(2) on
 * a saving arc, write(2) on a resuming arc, VFIO_MIG_GET_PRECOPY_INFO through its ioctl.
 * The core installs it as the caller's data_fd; the process's fd table holds it from then on.
 */
export type VfioMigrationFile = FileOps;

/** One range of a DMA_LOGGING_START, as a node of the core's interval tree: [start, last]. */
export interface VfioLogRange {
  readonly start: bigint;
  readonly last: bigint;
}

/**
 * `struct iova_bitmap` as a driver sees it during log_read_and_clear: iova_bitmap_set()
 * marks [iova, iova + length) dirty in the caller's user bitmap (bits only ever set).
 */
export interface IovaBitmapSet {
  /** iova_bitmap_set(). */
  set(iova: bigint, length: bigint): void;
}

/** struct vfio_migration_ops. */
export interface VfioMigrationOps {
  /**
   * migration_set_state: moves the device to `newState` (an enum vfio_device_mig_state
   * value), arc by arc as vfio_mig_get_next_state() decides; returns the data file when
   * the last arc opened one (a saving or resuming arc), else null.
   */
  migrationSetState(newState: number): KernelResult<VfioMigrationFile | null>;
  /** migration_get_state. */
  migrationGetState(): KernelResult<number>;
  /** migration_get_data_size (Linux 6.2+): the bytes STOP_COPY will produce. */
  migrationGetDataSize?(): KernelResult<bigint>;
}

/** struct vfio_log_ops. */
export interface VfioLogOps {
  /**
   * log_start: arms tracking of `ranges` (sorted by start, non-overlapping, at least one)
   * with `pageSize` as a hint; returns the page size the device chose (written back to
   * the user's control struct).
   */
  logStart(ranges: readonly VfioLogRange[], pageSize: bigint): KernelResult<bigint>;
  /** log_stop. */
  logStop(): KernelResult<void>;
  /** log_read_and_clear: reports (and clears) the dirty pages of [iova, iova + length). */
  logReadAndClear(iova: bigint, length: bigint, dirty: IovaBitmapSet): KernelResult<void>;
}

/** struct vfio_device_ops plus the fields a driver fills in at init (struct vfio_device). */
export interface VfioDeviceDriver {
  /** vfio_device_ops.name. */
  readonly name: string;
  /** vfio_device.migration_flags: VFIO_MIGRATION_STOP_COPY | P2P | PRE_COPY. */
  readonly migrationFlags: number;
  /** vfio_device.mig_ops (absent: no migration; the features answer ENOTTY). */
  readonly migOps?: VfioMigrationOps;
  /** vfio_device.log_ops (absent: no DMA logging; the features answer ENOTTY). */
  readonly logOps?: VfioLogOps;
  /** ops->ioctl: every device ioctl but VFIO_DEVICE_FEATURE (GET_INFO, RESET, ...). */
  ioctl?(task: UserAccess, cmd: number, arg: bigint): number;
  /** ops->device_feature: features the core does not handle itself. */
  deviceFeature?(task: UserAccess, flags: number, arg: bigint, argsz: number): number;
  /** ops->open_device: the first open of the device; 0 or -errno. */
  openDevice?(): number;
  /** ops->close_device: the last close of the device. */
  closeDevice?(): void;
}
