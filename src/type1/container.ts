/**
 * The VFIO core around type1 (drivers/vfio/container.c, group.c): /dev/vfio/vfio container
 * files, /dev/vfio/N group files, VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU, and
 * pass-through of the remaining container ioctls to the type1 backend.
 */
import { WasmCore } from "../wasm/core";
import { Errno } from "../uapi/errno";
import * as uapi from "../uapi/vfio";
import type { FileOps, UserAccess } from "../process/file";
import { isTask } from "../process/task";
import type { Process } from "../process/process";
import type { Platform, PlatformGroup } from "../iommu/platform";
import { VfioIommu, type DmaMapArgs } from "./vfio-iommu";
import { vfioIommuType1CheckExtension, vfioIommuType1Ioctl, vfioIommuType1MapDmaCopied } from "./ioctl";
import { DEFAULT_TYPE1_OPTIONS, Type1Options, type1Kernel } from "./options";
import type { VfioCoreDevice, VfioGroupState } from "../vfio/vfio-main";
import { VFIO_GROUP_GET_DEVICE_FD } from "../uapi/vfio";
// Copied once: under a loader that wraps modules (tsx, esbuild) every read of an imported
// binding is a getter call, and the container ioctl switch reads these on every call.
const {
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_SET_IOMMU,
} = uapi;

/** The VFIO devices registered in each group, by name (vfio_register_group_dev). */
const groupDevices = new WeakMap<PlatformGroup, Map<string, VfioCoreDevice>>();
/** What each group's file and its devices' cdevs share (opened_file, cdev_device_open_cnt). */
const groupStates = new WeakMap<PlatformGroup, VfioGroupState>();

/** The shared state of `group`'s VFIO group (made on first use). */
export function vfioGroupState(group: PlatformGroup): VfioGroupState {
  let st = groupStates.get(group);
  if (!st) groupStates.set(group, (st = { openedFile: false, cdevDeviceOpenCnt: 0 }));
  return st;
}

/**
 * Registers `device` as `name` in `group`, so VFIO_GROUP_GET_DEVICE_FD with that name opens
 * it (vfio_register_group_dev / vfio_register_emulated_iommu_dev).
 */
export function registerGroupDevice(group: PlatformGroup, name: string, device: VfioCoreDevice): void {
  let m = groupDevices.get(group);
  if (!m) groupDevices.set(group, (m = new Map()));
  m.set(name, device);
  device.group = vfioGroupState(group);
}

/** PAGE_SIZE: strndup_user's bound on the device name. */
const NAME_MAX_BYTES = 4096;

/** VFIO_GROUP_FLAGS_VIABLE / _CONTAINER_SET. */
const VFIO_GROUP_FLAGS_VIABLE = 1 << 0;
const VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1;

/** A /dev/vfio/vfio file. */
export class VfioContainer implements FileOps {
  /** The groups attached to this container. */
  readonly groups: VfioGroupFile[] = [];
  /** The type1 backend once VFIO_SET_IOMMU succeeded. */
  iommu: VfioIommu | null = null;

  constructor(
    readonly core: WasmCore,
    readonly platform: Platform,
    readonly opts: Type1Options,
  ) {}

  ioctl(task: UserAccess, cmd: number, arg: bigint): number {
    switch (cmd) {
      case VFIO_GET_API_VERSION:
        return VFIO_API_VERSION;
      case VFIO_CHECK_EXTENSION:
        return vfioIommuType1CheckExtension(this.iommu, arg, type1Kernel(this.opts.profile));
      case VFIO_SET_IOMMU:
        return this.setIommu(arg);
      default:
        if (!this.iommu) return -Errno.EINVAL;
        if (!isTask(task)) return -Errno.EFAULT;
        return vfioIommuType1Ioctl(this.iommu, task, cmd, arg);
    }
  }

  /**
   * ioctl(VFIO_IOMMU_MAP_DMA) from the point where the kernel has copied the struct in
   * (Type1Handle, which has the fields it stored): the same checks and backend call as
   * ioctl() runs, without the copy and decode.
   */
  mapDmaCopied(task: UserAccess, argsz: number, m: DmaMapArgs): number {
    if (!this.iommu) return -Errno.EINVAL;
    if (!isTask(task)) return -Errno.EFAULT;
    return vfioIommuType1MapDmaCopied(this.iommu, task, argsz, m);
  }

  /** vfio_ioctl_set_iommu(). */
  private setIommu(arg: bigint): number {
    if (this.groups.length === 0 || this.iommu) return -Errno.EINVAL;
    if (vfioIommuType1CheckExtension(null, arg, type1Kernel(this.opts.profile)) <= 0) return -Errno.ENODEV;
    const iommu = VfioIommu.open(this.core, this.platform, Number(arg), this.opts);
    if (typeof iommu === "number") return iommu;
    for (const g of this.groups) {
      const r = iommu.attachGroup(g.group);
      if (r) {
        iommu.release();
        return r;
      }
    }
    this.iommu = iommu;
    return 0;
  }

  /** Called by a group file: attach (and, if the driver is set, attach to type1). */
  attach(g: VfioGroupFile): number {
    if (this.iommu) {
      const r = this.iommu.attachGroup(g.group);
      if (r) return r;
    }
    this.groups.push(g);
    return 0;
  }

  /** Called by a group file: detach; the last group takes the backend with it. */
  detach(g: VfioGroupFile): void {
    const i = this.groups.indexOf(g);
    if (i < 0) return;
    this.groups.splice(i, 1);
    if (this.iommu) {
      this.iommu.detachGroup(g.group);
      if (this.groups.length === 0) {
        this.iommu.release();
        this.iommu = null;
      }
    }
  }

  /**
   * vfio_fops_release(): the fd's reference goes, nothing else. Each attached group holds
   * its own reference (vfio_group_set_container()), so the container, its mappings and
   * their charge live until the last group leaves; that detach releases the backend.
   */
  release(): void {}
}

/** A /dev/vfio/N file. */
export class VfioGroupFile implements FileOps {
  container: VfioContainer | null = null;

  constructor(readonly group: PlatformGroup) {}

  ioctl(task: UserAccess, cmd: number, arg: bigint): number {
    switch (cmd) {
      case VFIO_GROUP_GET_STATUS: {
        const flags = VFIO_GROUP_FLAGS_VIABLE | (this.container ? VFIO_GROUP_FLAGS_CONTAINER_SET : 0);
        const b = new Uint8Array(8);
        const dv = new DataView(b.buffer);
        const hdr = task.copyFromUser(arg, 4);
        if (!hdr) return -Errno.EFAULT;
        dv.setUint32(0, new DataView(hdr.buffer, hdr.byteOffset).getUint32(0, true), true);
        if (dv.getUint32(0, true) < 8) return -Errno.EINVAL;
        dv.setUint32(4, flags, true);
        return task.copyToUser(arg, b) ? -Errno.EFAULT : 0;
      }
      case VFIO_GROUP_SET_CONTAINER: {
        const b = task.copyFromUser(arg, 4);
        if (!b) return -Errno.EFAULT;
        const fd = new DataView(b.buffer, b.byteOffset).getInt32(0, true);
        if (this.container) return -Errno.EINVAL;
        if (!isTask(task)) return -Errno.EBADF;
        const f = task.fdget(fd);
        if (!f) return -Errno.EBADF;
        if (!(f instanceof VfioContainer)) return -Errno.EINVAL;
        const r = f.attach(this);
        if (r) return r;
        this.container = f;
        return 0;
      }
      case VFIO_GROUP_UNSET_CONTAINER:
        if (!this.container) return -Errno.EINVAL;
        this.unsetContainer();
        return 0;
      case VFIO_GROUP_GET_DEVICE_FD:
        return this.getDeviceFd(task, arg);
      default:
        return -Errno.ENOTTY;
    }
  }

  /**
   * vfio_group_ioctl_get_device_fd(): the device named by the string at `arg` (strndup_user:
   * EFAULT, EINVAL without a NUL in the first 4 KiB), ENODEV for no such device, EINVAL
   * while the group has no container (vfio_group_has_iommu); the new fd is the return value.
   */
  private getDeviceFd(task: UserAccess, arg: bigint): number {
    let name = "";
    for (let off = 0; ; off += 256) {
      if (off >= NAME_MAX_BYTES) return -Errno.EINVAL;
      let chunk = task.copyFromUser(arg + BigInt(off), 256);
      if (!chunk) {
        // strncpy_from_user stops at the first unreadable byte: read byte by byte to find it.
        const bytes: number[] = [];
        for (let i = 0; i < 256; i++) {
          const b = task.copyFromUser(arg + BigInt(off + i), 1);
          if (!b) break;
          bytes.push(b[0]);
          if (b[0] === 0) break;
        }
        if (!bytes.includes(0)) return -Errno.EFAULT;
        chunk = Uint8Array.from(bytes);
      }
      const nul = chunk.indexOf(0);
      name += new TextDecoder().decode(nul >= 0 ? chunk.subarray(0, nul) : chunk);
      if (nul >= 0) break;
    }
    const device = groupDevices.get(this.group)?.get(name);
    if (!device) return -Errno.ENODEV;
    if (!this.container) return -Errno.EINVAL;
    if (!isTask(task) || !task.getUnusedFd || !task.fdInstall) return -Errno.EMFILE;
    const f = device.openFile({ kind: "group" });
    if (typeof f === "number") return f;
    const fd = task.getUnusedFd();
    task.fdInstall(fd, f);
    return fd;
  }

  /** Leaves the container (VFIO_GROUP_UNSET_CONTAINER or last close). */
  unsetContainer(): void {
    const c = this.container;
    this.container = null;
    c?.detach(this);
  }

  release(): void {
    this.unsetContainer();
  }
}

/**
 * Makes /dev/vfio/vfio and /dev/vfio/<group id> of `platform` openable in `proc`. Every
 * open of /dev/vfio/vfio is a new container; a group can be open once at a time (-EBUSY).
 * Containers share the process's Wasm core so the dirty bitmap packs straight into its memory.
 * What pinning charges is the process's (`ProcessOptions.gup`): give a process made for a
 * `linux-6.12` or `mainline` container `type1Kernel(profile).gup`, as `createVfioProcess` does.
 */
export function installVfio(proc: Process, platform: Platform, opts: Partial<Type1Options> = {}): void {
  const options: Type1Options = { ...DEFAULT_TYPE1_OPTIONS, ...opts };
  proc.registerDevice("/dev/vfio/vfio", () => new VfioContainer(proc.core, platform, options));
  for (const g of platform.groups) {
    let open: VfioGroupFile | null = null;
    proc.registerDevice(`/dev/vfio/${g.id}`, () => {
      // vfio_group_fops_open(): a device bound through its cdev, or the group already open: EBUSY.
      const st = vfioGroupState(g);
      if (st.cdevDeviceOpenCnt || open) return -Errno.EBUSY;
      const f = new VfioGroupFile(g);
      const release = f.release.bind(f);
      f.release = () => {
        release();
        if (open === f) {
          open = null;
          st.openedFile = false;
        }
      };
      open = f;
      st.openedFile = true;
      return f;
    });
  }
}
