/**
 * A VFIO device cdev (/dev/vfio/devices/vfioN, drivers/vfio/device_cdev.c) for a PCI
 * device behind an IOMMU, reaching iommufd the way a VMM does: VFIO_DEVICE_BIND_IOMMUFD
 * (iommufd_device_bind), ATTACH/DETACH_IOMMUFD_PT (iommufd_device_attach/replace/detach)
 * and vfio-pci's VFIO_DEVICE_GET_INFO. Closing the file unbinds the device.
 */
import { Errno } from "../uapi/errno";
import type { FileOps, UserAccess } from "../process/file";
import { isTask } from "../process/task";
import type { Process } from "../process/process";
import { IommufdCtx } from "./iommufd";
import type { DeviceIommu } from "./ioas";

/** What vfio-pci reports for the device (VFIO_DEVICE_GET_INFO). */
export interface VfioPciInfo {
  flags: number;
  numRegions: number;
  numIrqs: number;
}

const VFIO_DEVICE_GET_INFO = 0x3b6b;
const VFIO_DEVICE_BIND_IOMMUFD = 0x3b76;
const VFIO_DEVICE_ATTACH_IOMMUFD_PT = 0x3b77;
const VFIO_DEVICE_DETACH_IOMMUFD_PT = 0x3b78;
/** EBADFD: iommufd_ctx_from_fd() on a file that is not /dev/iommu. */
const EBADFD = 77;

/** One open of the device's cdev (struct vfio_device_file). */
export class VfioDeviceFile implements FileOps {
  private ctx: IommufdCtx | null = null;
  private devid = 0;
  private attached = false;

  constructor(
    private readonly iommu: DeviceIommu,
    private readonly info: VfioPciInfo,
  ) {}

  ioctl(task: UserAccess, cmd: number, arg: bigint): number {
    if (cmd === VFIO_DEVICE_BIND_IOMMUFD) return this.bind(task, arg);
    if (!this.ctx) return -Errno.EINVAL; // access not granted before BIND_IOMMUFD
    switch (cmd) {
      case VFIO_DEVICE_ATTACH_IOMMUFD_PT:
        return this.attach(task, arg);
      case VFIO_DEVICE_DETACH_IOMMUFD_PT:
        return this.detach(task, arg);
      case VFIO_DEVICE_GET_INFO:
        return this.getInfo(task, arg);
      default:
        return -Errno.ENOTTY;
    }
  }

  /** vfio_df_ioctl_bind_iommufd(). */
  private bind(task: UserAccess, arg: bigint): number {
    const b = task.copyFromUser(arg, 16);
    if (!b) return -Errno.EFAULT;
    const dv = new DataView(b.buffer, b.byteOffset, 16);
    const fd = dv.getInt32(8, true);
    if (dv.getUint32(0, true) < 16 || dv.getUint32(4, true) || fd < 0) return -Errno.EINVAL;
    if (this.ctx) return -Errno.EINVAL; // one device cannot be bound twice
    if (!isTask(task)) return -Errno.EBADF;
    const f = task.fdget(fd);
    if (!f) return -Errno.EBADF;
    if (!(f instanceof IommufdCtx)) return -EBADFD;
    const id = f.bindDevice(this.iommu);
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, id, true);
    if (task.copyToUser(arg + 12n, out) !== 0) {
      f.unbindDevice(id);
      return -Errno.EFAULT;
    }
    this.ctx = f;
    this.devid = id;
    return 0;
  }

  /** vfio_df_ioctl_attach_pt() -> vfio_iommufd_physical_attach_ioas(): attach, or replace once attached. */
  private attach(task: UserAccess, arg: bigint): number {
    const b = task.copyFromUser(arg, 12);
    if (!b) return -Errno.EFAULT;
    const dv = new DataView(b.buffer, b.byteOffset, 12);
    if (dv.getUint32(0, true) < 12 || dv.getUint32(4, true)) return -Errno.EINVAL;
    const ctx = this.ctx!;
    const r = this.attached ? ctx.replaceDevice(this.devid, dv.getUint32(8, true)) : ctx.attachDevice(this.devid, dv.getUint32(8, true));
    if (r < 0) return r;
    this.attached = true;
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, r, true);
    if (task.copyToUser(arg + 8n, out) !== 0) {
      ctx.detachDevice(this.devid);
      this.attached = false;
      return -Errno.EFAULT;
    }
    return 0;
  }

  /** vfio_df_ioctl_detach_pt(). */
  private detach(task: UserAccess, arg: bigint): number {
    const b = task.copyFromUser(arg, 8);
    if (!b) return -Errno.EFAULT;
    const dv = new DataView(b.buffer, b.byteOffset, 8);
    if (dv.getUint32(0, true) < 8 || dv.getUint32(4, true)) return -Errno.EINVAL;
    if (this.attached) this.ctx!.detachDevice(this.devid);
    this.attached = false;
    return 0;
  }

  /** vfio_pci_ioctl_get_info(): no capabilities for this device. */
  private getInfo(task: UserAccess, arg: bigint): number {
    const b = task.copyFromUser(arg, 16);
    if (!b) return -Errno.EFAULT;
    const argsz = new DataView(b.buffer, b.byteOffset, 16).getUint32(0, true);
    if (argsz < 16) return -Errno.EINVAL;
    const out = new DataView(new ArrayBuffer(24));
    out.setUint32(0, argsz, true);
    out.setUint32(4, this.info.flags, true);
    out.setUint32(8, this.info.numRegions, true);
    out.setUint32(12, this.info.numIrqs, true);
    const n = Math.min(argsz, 24);
    return task.copyToUser(arg, new Uint8Array(out.buffer, 0, n)) === 0 ? 0 : -Errno.EFAULT;
  }

  release(): void {
    if (this.ctx) this.ctx.unbindDevice(this.devid);
    this.ctx = null;
  }
}

/** Makes `path` the cdev of a vfio-pci device behind `iommu` in `proc`. */
export function installVfioDeviceCdev(proc: Process, path: string, iommu: DeviceIommu, info: VfioPciInfo): void {
  proc.registerDevice(path, () => new VfioDeviceFile(iommu, info));
}
