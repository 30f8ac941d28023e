/**
 * /dev/iommu: struct iommufd_ctx as a FileOps. The generic ioctl framing of
 * iommufd/main.c (size word, minimum size, zero tail else E2BIG, ENOTTY, respond with
 * min(user, kernel) bytes) and the handlers: IOAS_ALLOC/MAP/UNMAP, HWPT_ALLOC (with
 * DIRTY_TRACKING), GET_HW_INFO, HWPT_SET_DIRTY_TRACKING, HWPT_GET_DIRTY_BITMAP and DESTROY,
 * plus the selftest's IOMMU_TEST_CMD (src/iommufd/selftest.ts).
 */
import { WasmCore } from "../wasm/core";
import { Errno } from "../uapi/errno";
import type { FileOps, UserAccess } from "../process/file";
import { PgtableDomain } from "../iommu/hw";
import * as U from "./uapi";
import {
  IommufdObj,
  IoasObj,
  HwptObj,
  DeviceObj,
  DeviceIommu,
  AccountMode,
  ULONG_MAX,
  newIoas,
  allocPages,
  mapPages,
  getPages,
  unmapIovaRange,
  iovaRanges,
  setAllowIova,
  setLargePages,
  tableAddDomain,
  tableRemoveDomain,
  destroyIoasAreas,
  reserveIova,
  removeReserved,
} from "./ioas";
import { testCmd } from "./selftest";
import type { Ucmd } from "./ucmd";
import { argInt, argObject } from "../util/args";
import { readAndClearDirty612 } from "./iova-bitmap";
import { isTask } from "../process/task";
import { CAP_SYS_RESOURCE } from "../process/mm";

export type { Ucmd } from "./ucmd";

type Handler = (ctx: IommufdCtx, u: Ucmd) => number;

const PAGE = 4096;

/** An open /dev/iommu. */
export class IommufdCtx implements FileOps {
  /** The object table (xarray with ALLOC1: ids from 1, lowest free first). */
  readonly objects = new Map<number, IommufdObj>();
  /** IOMMU_OPTION_RLIMIT_MODE: how new iopt_pages of a task without CAP_IPC_LOCK are charged. */
  accountMode: AccountMode = "user";
  /**
   * Whether the process's user pages are physically contiguous (THP or hugetlbfs backing),
   * so a mock domain with huge IOVA pages gets huge leaves. On by default: the 6.12 test
   * kernel has CONFIG_TRANSPARENT_HUGEPAGE_ALWAYS, and the oracle shows 1 MiB mock leaves
   * over anonymous memory (mock-dirty, case hugeiova).
   */
  physContiguous = true;

  constructor(readonly core: WasmCore) {}

  /** iommufd_object_alloc()'s id. */
  allocId(): number {
    let id = 1;
    while (this.objects.has(id)) id++;
    return id;
  }

  /** iommufd_get_object() with a type check: the object or null (ENOENT). */
  get<K extends IommufdObj["kind"]>(id: number, kind: K): Extract<IommufdObj, { kind: K }> | null {
    const o = this.objects.get(id);
    return o && o.kind === kind ? (o as Extract<IommufdObj, { kind: K }>) : null;
  }

  ioctl(task: UserAccess, cmd: number, arg: bigint): number {
    const op = OPS.get(cmd >>> 0);
    if (!op) return -Errno.ENOTTY;
    const head = task.copyFromUser(arg, 4);
    if (!head) return -Errno.EFAULT;
    const userSize = new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true);
    if (userSize < op.min) return -Errno.EINVAL;
    const got = task.copyFromUser(arg, Math.min(userSize, op.size));
    if (!got) return -Errno.EFAULT;
    if (userSize > op.size) {
      const tail = task.copyFromUser(arg + BigInt(op.size), userSize - op.size);
      if (!tail) return -Errno.EFAULT;
      if (tail.some((b) => b !== 0)) return -Errno.E2BIG;
    }
    const buf = new Uint8Array(op.size);
    buf.set(got);
    return op.fn(this, { task, arg, userSize, buf, dv: new DataView(buf.buffer) });
  }

  /** iommufd_ucmd_respond(): copies min(user, kernel) bytes back; EFAULT if it cannot. */
  respond(u: Ucmd): number {
    return u.task.copyToUser(u.arg, u.buf.subarray(0, Math.min(u.userSize, u.buf.length))) === 0 ? 0 : -Errno.EFAULT;
  }

  release(): void {
    // iommufd_fops_release(): every object destroyed, so every pin released and uncharged.
    for (const o of this.objects.values()) if (o.kind === "device") this.detach(o);
    for (const o of this.objects.values()) if (o.kind === "hwpt") this.dropHwpt(o);
    for (const o of this.objects.values()) if (o.kind === "ioas") destroyIoasAreas(o);
    this.objects.clear();
  }

  /**
   * The paging domain a device's driver allocates: the device's own IOMMU geometry, else
   * the selftest mock (2 KiB pages, + 1 MiB with HUGE_IOVA).
   */
  newMockDomain(dev: DeviceObj, dirty: boolean): PgtableDomain | null {
    if (dev.iommu) return PgtableDomain.create(this.core, { format: dev.iommu.format, pgsizeBitmap: dev.iommu.pgsizeBitmap, dirtyTracking: dirty });
    const huge = (dev.flags & U.MOCK_FLAGS_DEVICE_HUGE_IOVA) !== 0;
    return PgtableDomain.create(this.core, {
      format: "amd-v1",
      granuleShift: 11,
      levels: 3,
      pgsizeBitmap: U.MOCK_PAGE_SIZE + (huge ? U.MOCK_HUGE_PAGE_SIZE : 0),
      dirtyTracking: dirty,
    });
  }

  /** Whether the device's IOMMU can track dirty pages (IOMMU_CAP_DIRTY_TRACKING). */
  static canTrackDirty(dev: DeviceObj): boolean {
    return dev.iommu ? dev.iommu.dirtyTracking : (dev.flags & U.MOCK_FLAGS_DEVICE_NO_DIRTY) === 0;
  }

  /**
   * iommufd_hwpt_paging_alloc(): a paging HWPT on `ioas` for `dev`'s IOMMU, its domain added
   * to the IOAS (aperture reserved, areas mapped and pinned). With `attach`, the device is
   * attached first (its reserved regions enforced), as an automatic domain is. The id is
   * taken when the object is allocated, before anything can fail.
   */
  allocHwpt(ioas: IoasObj, dev: DeviceObj, dirty: boolean, auto: boolean): HwptObj | number {
    if (dirty && !IommufdCtx.canTrackDirty(dev)) return -Errno.EOPNOTSUPP;
    const domain = this.newMockDomain(dev, dirty);
    if (!domain) return -Errno.ENOMEM;
    const h: HwptObj = { kind: "hwpt", id: this.allocId(), ioas, domain, auto, devices: new Set(), smallMaps: !dev.iommu && !this.physContiguous };
    this.objects.set(h.id, h);
    if (auto) {
      const r = this.attachHwpt(dev, h);
      if (r < 0) {
        this.objects.delete(h.id);
        domain.destroy();
        return r;
      }
    }
    const start = dev.iommu ? dev.iommu.apertureStart : U.MOCK_APERTURE_START;
    const last = dev.iommu ? dev.iommu.apertureLast : U.MOCK_APERTURE_LAST;
    const r = tableAddDomain(ioas, h, start, last);
    if (r < 0) {
      if (auto) this.detachHwpt(dev, h);
      this.objects.delete(h.id);
      domain.destroy();
      return r;
    }
    return h;
  }

  /** iommufd_hw_pagetable_attach(): the device's reserved regions enforced in the IOAS, then the domain's attach_dev. */
  private attachHwpt(dev: DeviceObj, h: HwptObj): number {
    if (h.domain.dirtyOps && !IommufdCtx.canTrackDirty(dev)) return -Errno.EINVAL; // attach_dev refuses
    for (const r of dev.iommu?.reserved ?? []) {
      const e = reserveIova(h.ioas, r.start, r.last, dev);
      if (e < 0) {
        removeReserved(h.ioas, dev);
        return e;
      }
    }
    h.devices.add(dev);
    dev.hwpt = h;
    return 0;
  }

  private detachHwpt(dev: DeviceObj, h: HwptObj): void {
    h.devices.delete(dev);
    dev.hwpt = null;
    removeReserved(h.ioas, dev);
  }

  /**
   * iommufd_device_auto_get_domain(): an existing automatic HWPT of the IOAS the device can
   * attach to (EINVAL from attach means incompatible: try the next), else a new one.
   */
  autoGetDomain(dev: DeviceObj, ioas: IoasObj): HwptObj | number {
    for (const h of ioas.hwpts) {
      if (!h.auto) continue;
      const r = this.attachHwpt(dev, h);
      if (r === -Errno.EINVAL) continue;
      if (r < 0) return r;
      return h;
    }
    return this.allocHwpt(ioas, dev, false, true);
  }

  /** Attaches a device to an IOAS (automatic domain) or a paging HWPT: the HWPT or -errno. */
  attachTo(dev: DeviceObj, target: IoasObj | HwptObj): HwptObj | number {
    if (target.kind === "ioas") return this.autoGetDomain(dev, target);
    const r = this.attachHwpt(dev, target);
    return r < 0 ? r : target;
  }

  /**
   * iommufd_device_bind(), the in-kernel entry a VFIO device cdev uses
   * (VFIO_DEVICE_BIND_IOMMUFD): binds a device behind `iommu` to this context and returns
   * its device id (the dev_id of IOMMU_HWPT_ALLOC).
   */
  bindDevice(iommu: DeviceIommu): number {
    argObject("iommu", iommu);
    const dev: DeviceObj = { kind: "device", id: this.allocId(), flags: iommu.dirtyTracking ? 0 : U.MOCK_FLAGS_DEVICE_NO_DIRTY, iommu, hwpt: null, stdev: null };
    this.objects.set(dev.id, dev);
    return dev.id;
  }

  /**
   * iommufd_device_attach() (VFIO_DEVICE_ATTACH_IOMMUFD_PT): attaches a bound device to a
   * paging HWPT, or to an IOAS through an automatic HWPT. Returns the HWPT id or -errno
   * (ENOENT: no such device/pt; EBUSY: already attached; EINVAL: a dirty-tracking HWPT
   * for a device that cannot track, or a pt of another kind).
   */
  attachDevice(devId: number, ptId: number): number {
    argInt("devId", devId);
    argInt("ptId", ptId);
    const dev = this.get(devId, "device");
    const target = this.objects.get(ptId);
    if (!dev || !target) return -Errno.ENOENT;
    if (target.kind !== "ioas" && target.kind !== "hwpt") return -Errno.EINVAL;
    if (dev.hwpt) return -Errno.EBUSY;
    const h = this.attachTo(dev, target);
    return typeof h === "number" ? h : h.id;
  }

  /** iommufd_device_replace(): moves an attached device to another IOAS/HWPT; the HWPT id or -errno. */
  replaceDevice(devId: number, ptId: number): number {
    const dev = this.get(devId, "device");
    const target = this.objects.get(ptId);
    if (!dev || !target) return -Errno.ENOENT;
    if (target.kind !== "ioas" && target.kind !== "hwpt") return -Errno.EINVAL;
    const h = this.replace(dev, target);
    return typeof h === "number" ? h : h.id;
  }

  /** Replace for any device (the cdev's and the selftest's MOCK_DOMAIN_REPLACE). */
  replace(dev: DeviceObj, target: IoasObj | HwptObj): HwptObj | number {
    const old = dev.hwpt;
    if (!old) return this.attachTo(dev, target);
    if (target === old || (target.kind === "ioas" && old.auto && old.ioas === target)) return old;
    old.devices.delete(dev);
    dev.hwpt = null;
    const saved = old.ioas.reserved;
    removeReserved(old.ioas, dev);
    const h = this.attachTo(dev, target);
    if (typeof h === "number") {
      old.ioas.reserved = saved; // as it was, in its order
      old.devices.add(dev);
      dev.hwpt = old;
      return h;
    }
    if (old.auto && old.devices.size === 0) this.dropHwpt(old);
    return h;
  }

  /** iommufd_device_detach() of a bound device. */
  detachDevice(devId: number): void {
    const dev = this.get(devId, "device");
    if (dev) this.detach(dev);
  }

  /** iommufd_device_unbind(): detaches a device bound with bindDevice() and drops it. */
  unbindDevice(devId: number): number {
    argInt("devId", devId);
    const dev = this.get(devId, "device");
    if (!dev || dev.stdev) return -Errno.ENOENT;
    this.detach(dev);
    this.objects.delete(devId);
    return 0;
  }

  /** Destroys a HWPT object (it must have no devices): its domain leaves the IOAS. */
  dropHwpt(h: HwptObj): void {
    tableRemoveDomain(h.ioas, h);
    this.objects.delete(h.id);
    h.domain.destroy();
  }

  /** Detaches a device; an automatic HWPT goes with its last device. */
  detach(dev: DeviceObj): void {
    const h = dev.hwpt;
    if (!h) return;
    this.detachHwpt(dev, h);
    if (h.auto && h.devices.size === 0) this.dropHwpt(h);
  }

  /** ops->hw_info(): the driver's data and type for GET_HW_INFO. */
  hwInfoData(dev: DeviceObj): { type: number; data: Uint8Array } {
    if (dev.iommu) return dev.iommu.hwInfo ?? { type: 0, data: new Uint8Array(0) };
    // struct iommu_test_hw_info { u32 flags; u32 test_reg = IOMMU_HW_INFO_SELFTEST_REGVAL }
    const data = new Uint8Array(8);
    new DataView(data.buffer).setUint32(4, 0xdeadbeef, true);
    return { type: 0xfeedbeef, data }; // IOMMU_HW_INFO_TYPE_SELFTEST
  }

  /**
   * iopt_read_and_clear_dirty_data() as 6.12 runs it (src/iommufd/iova-bitmap.ts): one walk
   * that clears dirty bits whatever happens to the user bitmap, pinning bitmap pages lazily
   * and dropping the records of pages it cannot pin. Returns 0, or -ENOMEM before anything
   * changed. A method so tests can wrap the harvest.
   */
  readAndClearDirtyData(task: UserAccess, h: HwptObj, iova: bigint, length: bigint, pageSize: bigint, data: bigint, flags: number): number {
    return readAndClearDirty612(this.core, task, h, iova, length, pageSize, data, flags, (page) => userPagePinnable(task, page));
  }
}

/** pin_user_pages_fast(FOLL_WRITE) of one page would succeed: mapped and writable. */
function userPagePinnable(task: UserAccess, page: bigint): boolean {
  if (!isTask(task) || !task.mm || page < 0n || page + 4096n > BigInt(Number.MAX_SAFE_INTEGER)) return false;
  return task.mm.memory.accessibleLength(Number(page), 4096, true) === 4096;
}

function u32(u: Ucmd, off: number): number {
  return u.dv.getUint32(off, true);
}
function u64(u: Ucmd, off: number): bigint {
  return u.dv.getBigUint64(off, true);
}

const destroy: Handler = (ctx, u) => {
  const id = u32(u, 4);
  const o = ctx.objects.get(id);
  if (!o) return -Errno.ENOENT;
  switch (o.kind) {
    case "ioas":
      if (o.hwpts.size) return -Errno.EBUSY;
      destroyIoasAreas(o);
      ctx.objects.delete(id);
      return 0;
    case "hwpt":
      if (o.devices.size) return -Errno.EBUSY;
      ctx.dropHwpt(o);
      return 0;
    case "device":
      return -Errno.EBUSY; // unbound through its owner (the selftest object or the cdev)
    case "selftest":
      ctx.detach(o.idev);
      ctx.objects.delete(o.idev.id);
      ctx.objects.delete(id);
      return 0;
  }
};

const ioasAlloc: Handler = (ctx, u) => {
  if (u32(u, 4) !== 0) return -Errno.EOPNOTSUPP;
  const ioas = newIoas(ctx.allocId());
  u.dv.setUint32(8, ioas.id, true);
  ctx.objects.set(ioas.id, ioas);
  const r = ctx.respond(u);
  if (r < 0) ctx.objects.delete(ioas.id);
  return r;
};

const MAP_FLAGS = U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_WRITEABLE | U.IOMMU_IOAS_MAP_READABLE;
/** conv_iommu_prot(): IOMMU_READ 1, IOMMU_WRITE 2. */
const convProt = (flags: number): number => (flags & U.IOMMU_IOAS_MAP_READABLE ? 1 : 0) | (flags & U.IOMMU_IOAS_MAP_WRITEABLE ? 2 : 0);

const ioasMapH: Handler = (ctx, u) => {
  const flags = u32(u, 4);
  if (flags & ~MAP_FLAGS || u32(u, 12) !== 0) return -Errno.EOPNOTSUPP;
  const uaddr = u64(u, 16);
  const length = u64(u, 24);
  const iova = u64(u, 32);
  if (iova >= U.U64_MAX || length >= U.U64_MAX) return -Errno.EOVERFLOW;
  if (!(flags & (U.IOMMU_IOAS_MAP_WRITEABLE | U.IOMMU_IOAS_MAP_READABLE))) return -Errno.EINVAL;
  const ioas = ctx.get(u32(u, 8), "ioas");
  if (!ioas) return -Errno.ENOENT;
  const prot = convProt(flags);
  const pages = allocPages(u.task, uaddr, length, (prot & 2) !== 0, ctx.accountMode);
  if (typeof pages === "number") return pages;
  const r = mapPages(ioas, [{ pages, startByte: uaddr - pages.uptr, length }], length, iova, prot, !(flags & U.IOMMU_IOAS_MAP_FIXED_IOVA));
  if (typeof r === "number") return r;
  u.dv.setBigUint64(32, r, true);
  return ctx.respond(u); // a failed answer leaves the mapping in place, as in Linux
};

const ioasCopy: Handler = (ctx, u) => {
  const flags = u32(u, 4);
  if (flags & ~MAP_FLAGS) return -Errno.EOPNOTSUPP;
  const length = u64(u, 16);
  const dstIova = u64(u, 24);
  const srcIova = u64(u, 32);
  if (length >= U.U64_MAX || srcIova >= U.U64_MAX || dstIova >= U.U64_MAX) return -Errno.EOVERFLOW;
  if (!(flags & (U.IOMMU_IOAS_MAP_WRITEABLE | U.IOMMU_IOAS_MAP_READABLE))) return -Errno.EINVAL;
  const src = ctx.get(u32(u, 12), "ioas");
  if (!src) return -Errno.ENOENT;
  const elms = getPages(src, srcIova, length);
  if (typeof elms === "number") return elms;
  const dst = ctx.get(u32(u, 8), "ioas");
  if (!dst) return -Errno.ENOENT;
  const r = mapPages(dst, elms, length, dstIova, convProt(flags), !(flags & U.IOMMU_IOAS_MAP_FIXED_IOVA));
  if (typeof r === "number") return r;
  u.dv.setBigUint64(24, r, true);
  return ctx.respond(u);
};

const ioasUnmapH: Handler = (ctx, u) => {
  const ioas = ctx.get(u32(u, 4), "ioas");
  if (!ioas) return -Errno.ENOENT;
  const iova = u64(u, 8);
  const length = u64(u, 16);
  let res: { unmapped: bigint; rc: number };
  if (iova === 0n && length === U.U64_MAX) {
    res = unmapIovaRange(ioas, 0n, ULONG_MAX);
    if (res.rc === -Errno.ENOENT) res.rc = 0; // unmapping everything of an empty IOAS succeeds
  } else {
    if (iova >= U.U64_MAX || length >= U.U64_MAX) return -Errno.EOVERFLOW;
    if (length === 0n) return -Errno.EINVAL;
    if (iova + length - 1n > U.U64_MAX) return -Errno.EOVERFLOW;
    res = unmapIovaRange(ioas, iova, iova + length - 1n);
  }
  if (res.rc < 0) return res.rc;
  u.dv.setBigUint64(16, res.unmapped, true);
  return ctx.respond(u);
};

const iovaRangesH: Handler = (ctx, u) => {
  if (u32(u, 12) !== 0) return -Errno.EOPNOTSUPP;
  const ioas = ctx.get(u32(u, 4), "ioas");
  if (!ioas) return -Errno.ENOENT;
  const max = u32(u, 8);
  const ranges = u64(u, 16);
  let n = 0;
  for (const h of iovaRanges(ioas)) {
    if (n < max) {
      const b = new DataView(new ArrayBuffer(16));
      b.setBigUint64(0, h.start, true);
      b.setBigUint64(8, h.last, true);
      if (u.task.copyToUser((ranges + BigInt(n) * 16n) & U.U64_MAX, new Uint8Array(b.buffer)) !== 0) return -Errno.EFAULT;
    }
    n++;
  }
  u.dv.setUint32(8, n, true);
  u.dv.setBigUint64(24, ioas.iovaAlignment, true);
  const r = ctx.respond(u);
  if (r < 0) return r;
  return n > max ? -Errno.EMSGSIZE : 0;
};

const allowIovasH: Handler = (ctx, u) => {
  if (u32(u, 12) !== 0) return -Errno.EOPNOTSUPP;
  const ioas = ctx.get(u32(u, 4), "ioas");
  if (!ioas) return -Errno.ENOENT;
  const num = u32(u, 8);
  const ptr = u64(u, 16);
  const ranges: { start: bigint; last: bigint }[] = [];
  // iommufd_ioas_load_iovas()
  for (let i = 0; i < num; i++) {
    const b = u.task.copyFromUser((ptr + BigInt(i) * 16n) & U.U64_MAX, 16);
    if (!b) return -Errno.EFAULT;
    const v = new DataView(b.buffer, b.byteOffset, 16);
    const start = v.getBigUint64(0, true);
    const last = v.getBigUint64(8, true);
    if (start >= last) return -Errno.EINVAL;
    if (ranges.some((r) => r.start <= last && start <= r.last)) return -Errno.EINVAL;
    ranges.push({ start, last });
  }
  return setAllowIova(ioas, ranges);
};

const option: Handler = (ctx, u) => {
  if (u.dv.getUint16(10, true) !== 0) return -Errno.EOPNOTSUPP;
  const id = u32(u, 4);
  const op = u.dv.getUint16(8, true);
  const obj = u32(u, 12);
  const val = u64(u, 16);
  let rc: number;
  if (id === U.IOMMU_OPTION_RLIMIT_MODE) {
    if (obj) return -Errno.EOPNOTSUPP;
    if (op === U.IOMMU_OPTION_OP_GET) {
      u.dv.setBigUint64(16, ctx.accountMode === "mm" ? 1n : 0n, true);
      rc = 0;
    } else if (op === U.IOMMU_OPTION_OP_SET) {
      const t = u.task as Partial<{ capable(cap: number): boolean }>;
      if (!t.capable?.(CAP_SYS_RESOURCE)) return -Errno.EPERM;
      if (ctx.objects.size) return -Errno.EBUSY;
      if (val === 0n) ctx.accountMode = "user";
      else if (val === 1n) ctx.accountMode = "mm";
      else return -Errno.EINVAL;
      rc = 0;
    } else return -Errno.EOPNOTSUPP;
  } else if (id === U.IOMMU_OPTION_HUGE_PAGES) {
    const ioas = ctx.get(obj, "ioas");
    if (!ioas) return -Errno.ENOENT;
    if (op === U.IOMMU_OPTION_OP_SET) {
      if (val === 0n) rc = setLargePages(ioas, false);
      else if (val === 1n) rc = setLargePages(ioas, true);
      else rc = -Errno.EINVAL;
    } else if (op === U.IOMMU_OPTION_OP_GET) {
      u.dv.setBigUint64(16, ioas.disableLargePages ? 0n : 1n, true);
      rc = 0;
    } else rc = -Errno.EOPNOTSUPP;
  } else return -Errno.EOPNOTSUPP;
  if (rc < 0) return rc;
  // Only val64 goes back.
  return u.task.copyToUser(u.arg + 16n, u.buf.subarray(16, 24)) === 0 ? 0 : -Errno.EFAULT;
};

const hwptAlloc: Handler = (ctx, u) => {
  const flags = u32(u, 4);
  if (u32(u, 20) !== 0) return -Errno.EOPNOTSUPP;
  const dataType = u32(u, 24);
  const dataLen = u32(u, 28);
  if ((dataType === 0 && dataLen) || (dataType !== 0 && !dataLen)) return -Errno.EINVAL;
  const dev = ctx.get(u32(u, 8), "device");
  if (!dev) return -Errno.ENOENT;
  const pt = ctx.objects.get(u32(u, 12));
  if (!pt) return -Errno.EINVAL; // 6.12 turns a missing pt_id into EINVAL
  if (pt.kind === "hwpt") return -Errno.EOPNOTSUPP; // nested HWPTs are not modelled
  if (pt.kind !== "ioas") return -Errno.EINVAL;
  if (flags & ~(U.IOMMU_HWPT_ALLOC_NEST_PARENT | U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING)) return -Errno.EOPNOTSUPP;
  if (dataLen) return -Errno.EOPNOTSUPP; // user data for a paging domain: the mock and VT-d take none
  const dirty = (flags & U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0;
  const h = ctx.allocHwpt(pt, dev, dirty, false);
  if (typeof h === "number") return h;
  u.dv.setUint32(16, h.id, true);
  const r = ctx.respond(u);
  if (r < 0) ctx.dropHwpt(h);
  return r;
};

const hwInfo: Handler = (ctx, u) => {
  if (u32(u, 4) !== 0 || (u32(u, 28) & 0xffffff00) !== 0) return -Errno.EOPNOTSUPP;
  const dev = ctx.get(u32(u, 8), "device");
  if (!dev) return -Errno.ENOENT;
  const info = ctx.hwInfoData(dev);
  const want = u32(u, 12);
  const uptr = u64(u, 16);
  const copy = Math.min(want, info.data.length);
  if (copy && u.task.copyToUser(uptr, info.data.subarray(0, copy)) !== 0) return -Errno.EFAULT;
  if (copy < want && u.task.copyToUser((uptr + BigInt(copy)) & U.U64_MAX, new Uint8Array(want - copy)) !== 0) return -Errno.EFAULT;
  u.dv.setUint32(12, info.data.length, true);
  u.dv.setUint32(24, info.type, true);
  u.dv.setUint8(28, 0);
  u.dv.setBigUint64(32, IommufdCtx.canTrackDirty(dev) ? BigInt(U.IOMMU_HW_CAP_DIRTY_TRACKING) : 0n, true);
  return ctx.respond(u);
};

const setDirtyTracking: Handler = (ctx, u) => {
  const flags = u32(u, 4);
  if (flags & ~U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE) return -Errno.EOPNOTSUPP; // __reserved is not checked
  const h = ctx.get(u32(u, 8), "hwpt");
  if (!h) return -Errno.ENOENT;
  const d = h.domain;
  if (!d.dirtyOps) return -Errno.EOPNOTSUPP;
  const enable = (flags & U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE) !== 0;
  if (enable) {
    // iopt_clear_dirty_data(): start from a clean snapshot, always sync.
    const g = d.newGather();
    if (!g) return -Errno.ENOMEM;
    let r = 0;
    for (const a of h.ioas.areas) {
      r = d.readAndClearDirty(Number(a.iova), Number(a.length), 0, null, g);
      if (r < 0) break;
    }
    d.iotlbSync(g);
    g.dispose();
    if (r < 0) return r;
  }
  return d.setDirtyTracking(enable);
};

const getDirtyBitmap: Handler = (ctx, u) => {
  const flags = u32(u, 8);
  if (flags & ~U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR || u32(u, 12) !== 0) return -Errno.EOPNOTSUPP;
  const h = ctx.get(u32(u, 4), "hwpt");
  if (!h) return -Errno.ENOENT;
  const iova = u64(u, 16);
  const length = u64(u, 24);
  const pageSize = u64(u, 32);
  const data = u64(u, 40);
  // iommufd_check_iova_range() (an empty range is EINVAL on 6.12, not a wrap)
  if (length === 0n) return -Errno.EINVAL;
  const last = iova + length - 1n;
  if (last > U.U64_MAX || last < 0n) return -Errno.EOVERFLOW;
  const align = h.ioas.iovaAlignment;
  const end = (last + 1n) & U.U64_MAX;
  if (iova % align !== 0n || end % align !== 0n) return -Errno.EINVAL;
  if (pageSize === 0n) return -Errno.EINVAL;
  if ((iova & (pageSize - 1n)) !== 0n || (end & (pageSize - 1n)) !== 0n) return -Errno.EINVAL;
  if (!h.domain.dirtyOps) return -Errno.EOPNOTSUPP;
  return ctx.readAndClearDirtyData(u.task, h, iova, length, pageSize, data, flags);
};

const OPS = new Map<number, { size: number; min: number; fn: Handler }>([
  [U.IOMMU_DESTROY, { ...U.SIZES.destroy, fn: destroy }],
  [U.IOMMU_IOAS_ALLOC, { ...U.SIZES.ioasAlloc, fn: ioasAlloc }],
  [U.IOMMU_IOAS_MAP, { ...U.SIZES.ioasMap, fn: ioasMapH }],
  [U.IOMMU_IOAS_UNMAP, { ...U.SIZES.ioasUnmap, fn: ioasUnmapH }],
  [U.IOMMU_IOAS_COPY, { ...U.SIZES.ioasCopy, fn: ioasCopy }],
  [U.IOMMU_IOAS_IOVA_RANGES, { ...U.SIZES.iovaRanges, fn: iovaRangesH }],
  [U.IOMMU_IOAS_ALLOW_IOVAS, { ...U.SIZES.allowIovas, fn: allowIovasH }],
  [U.IOMMU_OPTION, { ...U.SIZES.option, fn: option }],
  [U.IOMMU_HWPT_ALLOC, { ...U.SIZES.hwptAlloc, fn: hwptAlloc }],
  [U.IOMMU_GET_HW_INFO, { ...U.SIZES.hwInfo, fn: hwInfo }],
  [U.IOMMU_HWPT_SET_DIRTY_TRACKING, { ...U.SIZES.setDirtyTracking, fn: setDirtyTracking }],
  [U.IOMMU_HWPT_GET_DIRTY_BITMAP, { ...U.SIZES.getDirtyBitmap, fn: getDirtyBitmap }],
  [U.IOMMU_TEST_CMD, { ...U.SIZES.testCmd, fn: (ctx, u) => testCmd(ctx, u) }],
]);
