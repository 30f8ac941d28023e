/**
 * The VFIO core's device fd (drivers/vfio/vfio_main.c, device_cdev.c, group.c's
 * VFIO_GROUP_GET_DEVICE_FD): `struct vfio_device` (VfioCoreDevice) and one open of it
 * (`struct vfio_device_file`, VfioDeviceFd). The core answers VFIO_DEVICE_FEATURE itself
 * for MIGRATION, MIG_DEVICE_STATE, DMA_LOGGING_START/STOP/REPORT and MIG_DATA_SIZE, with
 * vfio_check_feature()'s PROBE/GET/SET rules and argsz checks, calling the driver's
 * vfio_migration_ops / vfio_log_ops (driver.ts); every other ioctl goes to the driver.
 *
 * Failure leaves the model as it was except where Linux itself has a partial effect:
 * MIG_DEVICE_STATE SET writes data_fd = -1 back on a failed arc, and a combination
 * transition that fails part way stays in the state its last good arc reached (the driver
 * decides, as mtty and mlx5 do).
 */
import { Errno, type KernelResult } from "../uapi/errno";
import {
  DeviceFeature,
  DmaLoggingControl,
  DmaLoggingRange,
  DmaLoggingReport,
  FeatureMigration,
  LOG_MAX_RANGES,
  MigDataSize,
  MigState,
  U64_MASK,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MASK,
  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
  VFIO_DEVICE_FEATURE_MIGRATION,
  VFIO_DEVICE_FEATURE_PROBE,
  VFIO_DEVICE_FEATURE_SET,
} from "../uapi/vfio";
import type { FileOps, UserAccess } from "../process/file";
import { fput } from "../process/fref";
import type { Task } from "../process/task";
import type { VfioDeviceDriver, VfioLogRange } from "./driver";
import { UserIovaBitmap } from "./iova-bitmap";
import { VFIO_CORE_LINUX_6_12, type VfioCoreProfile } from "./profile";

/** VFIO_DEVICE_BIND_IOMMUFD and friends for a cdev open: the iommufd side, wired from above. */
export interface VfioIommufdBinding {
  /** The whole VFIO_DEVICE_BIND_IOMMUFD ioctl (vfio_df_ioctl_bind_iommufd); 0 or -errno. */
  bind(task: UserAccess, arg: bigint): number;
  /** VFIO_DEVICE_ATTACH_IOMMUFD_PT; absent: EINVAL-free no-op is not modelled, ENOTTY. */
  attach?(task: UserAccess, arg: bigint): number;
  /** VFIO_DEVICE_DETACH_IOMMUFD_PT. */
  detach?(task: UserAccess, arg: bigint): number;
  /** Unbind on the last close of a bound cdev file. */
  unbind(): void;
}

/**
 * The part of `struct vfio_group` the device fd's two paths share: a group file open
 * (opened_file) and devices bound through their cdev (cdev_device_open_cnt) exclude each
 * other with EBUSY (vfio_device_block_group, vfio_group_fops_open).
 */
export interface VfioGroupState {
  openedFile: boolean;
  cdevDeviceOpenCnt: number;
}

/** How a device fd was obtained: from a group (access granted at once) or a cdev open. */
export type VfioDeviceAccess = { kind: "group" } | { kind: "cdev"; binding: VfioIommufdBinding };

const u32 = (b: Uint8Array, off: number): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(off, true);
const u64 = (b: Uint8Array, off: number): bigint => new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(off, true);

/**
 * vfio_check_feature(): 1 when the caller should do the GET or SET, 0 for a successful
 * PROBE, else -EINVAL (an operation the feature lacks, neither GET nor SET, argsz short).
 */
export function vfioCheckFeature(flags: number, argsz: number, supportedOps: number, minsz: number): number {
  if ((flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET)) & ~supportedOps) return -Errno.EINVAL;
  if (flags & VFIO_DEVICE_FEATURE_PROBE) return 0;
  if (!(flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET))) return -Errno.EINVAL;
  if (argsz < minsz) return -Errno.EINVAL;
  return 1;
}

/** `struct vfio_device`: a registered device with its driver and the files open on it. */
export class VfioCoreDevice {
  /** open_count: files open on the device (open_device on the first, close_device on the last). */
  private openCount = 0;
  /** The device's IOMMU group, when it has one the process can open (see VfioGroupState). */
  group: VfioGroupState | null = null;

  constructor(
    readonly driver: VfioDeviceDriver,
    readonly profile: VfioCoreProfile = VFIO_CORE_LINUX_6_12,
  ) {}

  /** Files currently open on the device. */
  get opens(): number {
    return this.openCount;
  }

  /**
   * A new device file: VFIO_GROUP_GET_DEVICE_FD's (kind "group": open_device runs now) or a
   * cdev open's (open_device runs at BIND_IOMMUFD). Returns the file or -errno.
   */
  openFile(access: VfioDeviceAccess): VfioDeviceFd | number {
    const f = new VfioDeviceFd(this, access);
    if (access.kind === "group") {
      const r = this.openDevice();
      if (r < 0) return r;
      f.accessGranted = true;
    }
    return f;
  }

  /** vfio_df_open(): the first open calls the driver's open_device. */
  openDevice(): number {
    if (this.openCount === 0 && this.driver.openDevice) {
      const r = this.driver.openDevice();
      if (r < 0) return r;
    }
    this.openCount++;
    return 0;
  }

  /** vfio_df_close(): the last close calls the driver's close_device. */
  closeDevice(): void {
    if (this.openCount === 0) return;
    if (--this.openCount === 0) this.driver.closeDevice?.();
  }
}

/** One open of a device (`struct vfio_device_file`): the device fd's file operations. */
export class VfioDeviceFd implements FileOps {
  /** df->access_granted: set by a group open at once, by BIND_IOMMUFD on a cdev. */
  accessGranted = false;
  private released = false;

  constructor(
    readonly device: VfioCoreDevice,
    private readonly access: VfioDeviceAccess,
  ) {}

  /** vfio_device_fops_unl_ioctl(). */
  ioctl(task: UserAccess, cmd: number, arg: bigint): number {
    if (cmd === VFIO_DEVICE_BIND_IOMMUFD) return this.bindIommufd(task, arg);
    if (!this.accessGranted) return -Errno.EINVAL;
    if (this.access.kind === "cdev") {
      if (cmd === VFIO_DEVICE_ATTACH_IOMMUFD_PT) return this.access.binding.attach ? this.access.binding.attach(task, arg) : -Errno.EINVAL;
      if (cmd === VFIO_DEVICE_DETACH_IOMMUFD_PT) return this.access.binding.detach ? this.access.binding.detach(task, arg) : -Errno.EINVAL;
    }
    if (cmd === VFIO_DEVICE_FEATURE) return this.feature(task, arg);
    const drv = this.device.driver;
    return drv.ioctl ? drv.ioctl(task, cmd, arg) : -Errno.EINVAL;
  }

  /**
   * vfio_df_ioctl_bind_iommufd(): the struct (EFAULT; argsz, flags, a negative fd: EINVAL),
   * not on a group-opened file (EINVAL), the group not open (EBUSY), not bound yet (EINVAL),
   * then the iommufd side (the binding: EBADF, EBADFD, out_devid) and open_device.
   */
  private bindIommufd(task: UserAccess, arg: bigint): number {
    const b = task.copyFromUser(arg, 16);
    if (!b) return -Errno.EFAULT;
    if (u32(b, 0) < 16 || u32(b, 4) !== 0 || new DataView(b.buffer, b.byteOffset, 16).getInt32(8, true) < 0) return -Errno.EINVAL;
    if (this.access.kind !== "cdev") return -Errno.EINVAL;
    const group = this.device.group;
    if (group?.openedFile) return -Errno.EBUSY;
    if (group) group.cdevDeviceOpenCnt++;
    const fail = (r: number): number => {
      if (group) group.cdevDeviceOpenCnt--;
      return r;
    };
    if (this.accessGranted) return fail(-Errno.EINVAL);
    const r = this.access.binding.bind(task, arg);
    if (r < 0) return fail(r);
    const o = this.device.openDevice();
    if (o < 0) {
      this.access.binding.unbind();
      return fail(o);
    }
    this.accessGranted = true;
    return 0;
  }

  /** vfio_device_fops_release(): group close, or the cdev's unbind (which unblocks the group). */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.accessGranted) this.device.closeDevice();
    if (this.access.kind === "cdev" && this.accessGranted) {
      this.access.binding.unbind();
      if (this.device.group) this.device.group.cdevDeviceOpenCnt--;
    }
  }

  /** vfio_ioctl_device_feature(). */
  private feature(task: UserAccess, arg: bigint): number {
    const h = task.copyFromUser(arg, DeviceFeature.MINSZ);
    if (!h) return -Errno.EFAULT;
    const argsz = u32(h, DeviceFeature.argsz);
    const flags = u32(h, DeviceFeature.flags);
    if (argsz < DeviceFeature.MINSZ) return -Errno.EINVAL;
    const known = VFIO_DEVICE_FEATURE_MASK | VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_PROBE;
    if ((flags & ~known) >>> 0) return -Errno.EINVAL;
    if (!(flags & VFIO_DEVICE_FEATURE_PROBE) && flags & VFIO_DEVICE_FEATURE_SET && flags & VFIO_DEVICE_FEATURE_GET) return -Errno.EINVAL;
    const data = arg + BigInt(DeviceFeature.data);
    const size = argsz - DeviceFeature.MINSZ;
    const profile = this.device.profile;
    switch (flags & VFIO_DEVICE_FEATURE_MASK) {
      case VFIO_DEVICE_FEATURE_MIGRATION:
        return this.featureMigration(task, flags, data, size);
      case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
        return this.featureMigDeviceState(task, flags, data, size);
      case VFIO_DEVICE_FEATURE_DMA_LOGGING_START:
        return this.loggingStart(task, flags, data, size);
      case VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP:
        return this.loggingStop(flags, size);
      case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT:
        return this.loggingReport(task, flags, data, size);
      case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
        // Before 6.2 the feature number is nobody's.
        return profile.migDataSize ? this.featureMigDataSize(task, flags, data, size) : this.driverFeature(task, flags, data, size);
      default:
        return this.driverFeature(task, flags, data, size);
    }
  }

  /** The default branch: the driver's device_feature op, or the profile's errno without one. */
  private driverFeature(task: UserAccess, flags: number, data: bigint, size: number): number {
    const drv = this.device.driver;
    if (!drv.deviceFeature) return -this.device.profile.unknownFeatureErrno;
    return drv.deviceFeature(task, flags, data, size);
  }

  /** vfio_ioctl_device_feature_migration(): GET only; the device's migration_flags. */
  private featureMigration(task: UserAccess, flags: number, data: bigint, argsz: number): number {
    if (!this.device.driver.migOps) return -Errno.ENOTTY;
    const r = vfioCheckFeature(flags, argsz, VFIO_DEVICE_FEATURE_GET, FeatureMigration.SIZE);
    if (r !== 1) return r;
    const out = new Uint8Array(FeatureMigration.SIZE);
    new DataView(out.buffer).setBigUint64(FeatureMigration.flags, BigInt(this.device.driver.migrationFlags >>> 0), true);
    return task.copyToUser(data, out) === 0 ? 0 : -Errno.EFAULT;
  }

  /** vfio_ioctl_device_feature_mig_device_state(): GET the state, or SET it (maybe returning a data_fd). */
  private featureMigDeviceState(task: UserAccess, flags: number, data: bigint, argsz: number): number {
    const ops = this.device.driver.migOps;
    if (!ops) return -Errno.ENOTTY;
    const r = vfioCheckFeature(flags, argsz, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_GET, MigState.SIZE);
    if (r !== 1) return r;
    const b = task.copyFromUser(data, MigState.SIZE);
    if (!b) return -Errno.EFAULT;
    let deviceState = u32(b, MigState.device_state);
    let res: KernelResult<FileOps | null> = { ok: true, value: null };
    if (flags & VFIO_DEVICE_FEATURE_GET) {
      const s = ops.migrationGetState();
      if (!s.ok) return -s.errno;
      deviceState = s.value;
    } else {
      res = ops.migrationSetState(deviceState);
      if (res.ok && res.value) return this.migReturnFd(task, res.value, data, deviceState);
    }
    // out_copy: data_fd = -1 whatever happened, then the arc's error.
    if (task.copyToUser(data, migStateBytes(deviceState, -1)) !== 0) return -Errno.EFAULT;
    return res.ok ? 0 : -res.errno;
  }

  /** vfio_ioct_mig_return_fd(): install the data file as a new fd of the caller. */
  private migReturnFd(task: UserAccess, file: FileOps, data: bigint, deviceState: number): number {
    const t = task as Partial<Task>;
    const fd = t.getUnusedFd && t.fdInstall ? t.getUnusedFd() : -Errno.EMFILE;
    if (fd < 0) {
      fput(file);
      return fd;
    }
    if (task.copyToUser(data, migStateBytes(deviceState, fd)) !== 0) {
      fput(file);
      return -Errno.EFAULT;
    }
    t.fdInstall!(fd, file);
    fput(file); // fd_install consumes the reference the driver returned
    return 0;
  }

  /** vfio_ioctl_device_feature_migration_data_size(). */
  private featureMigDataSize(task: UserAccess, flags: number, data: bigint, argsz: number): number {
    const ops = this.device.driver.migOps;
    if (!ops) return -Errno.ENOTTY;
    const r = vfioCheckFeature(flags, argsz, VFIO_DEVICE_FEATURE_GET, MigDataSize.SIZE);
    if (r !== 1) return r;
    if (!ops.migrationGetDataSize) return -Errno.EINVAL;
    const s = ops.migrationGetDataSize();
    if (!s.ok) return -s.errno;
    const out = new Uint8Array(MigDataSize.SIZE);
    new DataView(out.buffer).setBigUint64(MigDataSize.stop_copy_length, s.value & U64_MASK, true);
    return task.copyToUser(data, out) === 0 ? 0 : -Errno.EFAULT;
  }

  /** vfio_ioctl_device_feature_logging_start(). */
  private loggingStart(task: UserAccess, flags: number, data: bigint, argsz: number): number {
    const ops = this.device.driver.logOps;
    if (!ops) return -Errno.ENOTTY;
    const r = vfioCheckFeature(flags, argsz, VFIO_DEVICE_FEATURE_SET, DmaLoggingControl.SIZE);
    if (r !== 1) return r;
    const c = task.copyFromUser(data, DmaLoggingControl.SIZE);
    if (!c) return -Errno.EFAULT;
    const pageSize = u64(c, DmaLoggingControl.page_size);
    const nnodes = u32(c, DmaLoggingControl.num_ranges);
    const rangesPtr = u64(c, DmaLoggingControl.ranges);
    if (nnodes === 0) return -Errno.EINVAL;
    if (nnodes > LOG_MAX_RANGES) return -Errno.E2BIG;
    const parsed = parseLogRanges(task, rangesPtr, nnodes, pageSize);
    if (!parsed.ok) return -parsed.errno;
    const started = ops.logStart(parsed.value, pageSize);
    if (!started.ok) return -started.errno;
    // The chosen page size goes back in the control struct (the rest as the caller wrote it).
    const out = c.slice();
    new DataView(out.buffer).setBigUint64(DmaLoggingControl.page_size, started.value & U64_MASK, true);
    if (task.copyToUser(data, out) !== 0) {
      ops.logStop();
      return -Errno.EFAULT;
    }
    return 0;
  }

  /** vfio_ioctl_device_feature_logging_stop(). */
  private loggingStop(flags: number, argsz: number): number {
    const ops = this.device.driver.logOps;
    if (!ops) return -Errno.ENOTTY;
    const r = vfioCheckFeature(flags, argsz, VFIO_DEVICE_FEATURE_SET, 0);
    if (r !== 1) return r;
    const s = ops.logStop();
    return s.ok ? 0 : -s.errno;
  }

  /** vfio_ioctl_device_feature_logging_report(). */
  private loggingReport(task: UserAccess, flags: number, data: bigint, argsz: number): number {
    const ops = this.device.driver.logOps;
    if (!ops) return -Errno.ENOTTY;
    const r = vfioCheckFeature(flags, argsz, VFIO_DEVICE_FEATURE_GET, DmaLoggingReport.SIZE);
    if (r !== 1) return r;
    const b = task.copyFromUser(data, DmaLoggingReport.SIZE);
    if (!b) return -Errno.EFAULT;
    const iova = u64(b, DmaLoggingReport.iova);
    const length = u64(b, DmaLoggingReport.length);
    const pageSize = u64(b, DmaLoggingReport.page_size);
    const bitmap = u64(b, DmaLoggingReport.bitmap);
    if (pageSize < 4096n || (pageSize & (pageSize - 1n)) !== 0n) return -Errno.EINVAL;
    if (iova + length > U64_MASK) return -Errno.EOVERFLOW;
    const iter = new UserIovaBitmap(task, iova, length, pageSize, bitmap);
    const readAndClear = (i: bigint, l: bigint): number => {
      const s = ops.logReadAndClear(i, l, iter);
      return s.ok ? 0 : -s.errno;
    };
    if (this.device.profile.iovaBitmapPinning === "upfront") return iter.forEachPinned(readAndClear);
    return readAndClear(iova, length);
  }
}

/** struct vfio_device_feature_mig_state's bytes. */
function migStateBytes(deviceState: number, dataFd: number): Uint8Array {
  const out = new Uint8Array(MigState.SIZE);
  const dv = new DataView(out.buffer);
  dv.setUint32(MigState.device_state, deviceState >>> 0, true);
  dv.setInt32(MigState.data_fd, dataFd, true);
  return out;
}

/**
 * DMA_LOGGING_START's range loop: each range read from user memory (EFAULT), aligned to
 * page_size (EINVAL; IS_ALIGNED with page_size 0 only accepts 0), not wrapping (EOVERFLOW)
 * and not overlapping an earlier one (EINVAL), checked in the caller's order as Linux
 * does. Returns the ranges sorted by start (the interval tree's in-order walk).
 */
export function parseLogRanges(task: UserAccess, rangesPtr: bigint, nnodes: number, pageSize: bigint): KernelResult<VfioLogRange[]> {
  const nodes: VfioLogRange[] = [];
  const mask = (pageSize - 1n) & U64_MASK;
  for (let i = 0; i < nnodes; i++) {
    const b = task.copyFromUser((rangesPtr + BigInt(i * DmaLoggingRange.SIZE)) & U64_MASK, DmaLoggingRange.SIZE);
    if (!b) return { ok: false, errno: Errno.EFAULT, errnoName: "EFAULT" };
    const iova = u64(b, DmaLoggingRange.iova);
    const length = u64(b, DmaLoggingRange.length);
    if ((iova & mask) !== 0n || (length & mask) !== 0n) return { ok: false, errno: Errno.EINVAL, errnoName: "EINVAL" };
    if (iova + length > U64_MASK) return { ok: false, errno: Errno.EOVERFLOW, errnoName: "EOVERFLOW" };
    const node = { start: iova, last: (iova + length - 1n) & U64_MASK };
    // interval_tree_iter_first(root, start, last): any node with start <= last && node.last >= start.
    if (nodes.some((n) => n.start <= node.last && n.last >= node.start)) return { ok: false, errno: Errno.EINVAL, errnoName: "EINVAL" };
    nodes.push(node);
  }
  return { ok: true, value: nodes.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0)) };
}
