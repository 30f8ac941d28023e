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
import { DirtyTarget, IotlbGather } from "../iommu/pgtable";
import { PgtableDomain } from "../iommu/hw";
import * as U from "./uapi";
import { IommufdObj, IoasObj, HwptObj, DeviceObj, DeviceIommu, Area, fillDomain, ioasMap, ioasAllocIova, ioasUnmap, iovaAlignment } from "./ioas";
import { testCmd } from "./selftest";
import { argInt, argObject } from "../util/args";

/** One decoded command: its bytes (kernel-sized), the user's size, and where it lives. */
export interface Ucmd {
  task: UserAccess;
  arg: bigint;
  userSize: number;
  buf: Uint8Array;
  dv: DataView;
}

type Handler = (ctx: IommufdCtx, u: Ucmd) => number;

const WINDOW_PAGES = 512; // iova_bitmap pins at most PAGE_SIZE / sizeof(struct page *) pages
const PAGE = 4096;

/** An open /dev/iommu. */
export class IommufdCtx implements FileOps {
  /** The object table (xarray with ALLOC1: ids from 1, lowest free first). */
  readonly objects = new Map<number, IommufdObj>();
  private scratch = 0;
  private target: DirtyTarget | null = null;
  private gather: IotlbGather | null = null;

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
    for (const o of this.objects.values()) if (o.kind === "hwpt") o.domain.destroy();
    this.objects.clear();
    if (this.scratch) this.core.free(this.scratch);
    this.target?.dispose();
    this.gather?.dispose();
    this.scratch = 0;
  }

  /**
   * The paging domain a device's driver allocates: the device's own IOMMU geometry, else
   * the selftest mock (Gen A geometry: 2 KiB pages, + 1 MiB with HUGE_IOVA).
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

  /** A paging HWPT on `ioas`, filled from its areas (iommufd_hwpt_paging_alloc). */
  allocHwpt(ioas: IoasObj, dev: DeviceObj, dirty: boolean, auto: boolean): HwptObj | number {
    const domain = this.newMockDomain(dev, dirty);
    if (!domain) return -Errno.ENOMEM;
    const start = dev.iommu ? dev.iommu.apertureStart : U.MOCK_APERTURE_START;
    const lastOk = dev.iommu ? dev.iommu.apertureLast : U.MOCK_APERTURE_LAST;
    for (const a of ioas.areas) {
      if (a.iova < start || a.iova + a.length - 1n > lastOk) {
        domain.destroy();
        return -Errno.EINVAL;
      }
    }
    const r = fillDomain(domain, ioas);
    if (r < 0) {
      domain.destroy();
      return r;
    }
    const h: HwptObj = { kind: "hwpt", id: this.allocId(), ioas, domain, auto, devices: new Set() };
    this.objects.set(h.id, h);
    ioas.hwpts.add(h);
    return h;
  }

  /**
   * iommufd_device_bind(), the in-kernel entry a VFIO device cdev uses
   * (VFIO_DEVICE_BIND_IOMMUFD): binds a device behind `iommu` to this context and returns
   * its device id (the dev_id of IOMMU_HWPT_ALLOC). A model entry point: the model has no
   * VFIO device cdev, so the VMM's bind goes straight here.
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
   * for a device that cannot track).
   */
  attachDevice(devId: number, ptId: number): number {
    argInt("devId", devId);
    argInt("ptId", ptId);
    const dev = this.get(devId, "device");
    const target = this.objects.get(ptId);
    if (!dev || !target || (target.kind !== "ioas" && target.kind !== "hwpt")) return -Errno.ENOENT;
    if (dev.hwpt) return -Errno.EBUSY;
    if (target.kind === "hwpt" && target.domain.dirtyOps && dev.flags & U.MOCK_FLAGS_DEVICE_NO_DIRTY) return -Errno.EINVAL;
    let h: HwptObj;
    if (target.kind === "hwpt") h = target;
    else {
      const r = this.allocHwpt(target, dev, false, true);
      if (typeof r === "number") return r;
      h = r;
    }
    h.devices.add(dev);
    dev.hwpt = h;
    return h.id;
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

  /** Destroys a HWPT object (it must have no devices). */
  dropHwpt(h: HwptObj): void {
    h.ioas.hwpts.delete(h);
    this.objects.delete(h.id);
    h.domain.destroy();
  }

  /** Detaches a device; an auto HWPT goes with its last device. */
  detach(dev: DeviceObj): void {
    const h = dev.hwpt;
    if (!h) return;
    h.devices.delete(dev);
    dev.hwpt = null;
    if (h.auto && h.devices.size === 0) this.dropHwpt(h);
  }

  /**
   * The harvest's window buffer, dirty target and gather (iova_bitmap_alloc's share), kept
   * for the life of the fd. All or nothing: a partial set would be taken for a complete one
   * by the next call.
   */
  private allocHarvestBuffers(): boolean {
    const scratch = this.core.alloc(WINDOW_PAGES * PAGE + 64);
    const target = scratch ? DirtyTarget.create(this.core) : null;
    const gather = target ? IotlbGather.create(this.core) : null;
    if (!gather) {
      target?.dispose();
      this.core.free(scratch);
      return false;
    }
    this.scratch = scratch;
    this.target = target;
    this.gather = gather;
    return true;
  }

  /**
   * iopt_read_and_clear_dirty_data(): iova_bitmap_for_each over the user bitmap, window by
   * window (≤ 512 pinned pages), the driver walk over the contiguous areas of each window,
   * set-ahead of records that cross a window, one IOTLB sync at the end unless NO_CLEAR.
   * Walk errors (holes, faults, tracking off) stop the walk but are not returned: the
   * ioctl returns 0 like the kernel's iommu_read_and_clear_dirty does.
   */
  readAndClearDirtyData(task: UserAccess, h: HwptObj, iova: bigint, length: bigint, pageSize: bigint, data: bigint, flags: number): number {
    if (!this.scratch && !this.allocHarvestBuffers()) return -Errno.ENOMEM;
    const t = this.target!;
    const g = this.gather!;
    const dom = h.domain;
    let pgshift = 0;
    while (((pageSize >> BigInt(pgshift)) & 1n) === 0n) pgshift++;
    const sh = BigInt(pgshift);
    const last = iova + length - 1n;
    if (length === 0n || last >= 1n << 53n) return 0; // no area can cover it: the walk stops at once
    const totalBytes = (((length - 1n) >> sh) >> 3n) + 1n; // mapped_total_index
    let base = 0n;
    let ahead: [number, number] | null = null;
    const areas = h.ioas.areas;
    while (base < totalBytes) {
      const addr = data + base;
      const pgoff = Number(addr % BigInt(PAGE));
      let npages = Number((totalBytes - base + BigInt(PAGE - 1)) / BigInt(PAGE)) + (pgoff ? 1 : 0);
      if (npages > WINDOW_PAGES) npages = WINDOW_PAGES;
      const pinStart = addr - BigInt(pgoff);
      const pinBytes = npages * PAGE;
      const bytes = task.copyFromUser(pinStart, pinBytes);
      if (!bytes) break; // pin_user_pages failed: EFAULT, dropped
      this.core.u8.set(bytes, this.scratch);
      let avail = BigInt(pinBytes - pgoff);
      if (avail > totalBytes - base) avail = totalBytes - base;
      const winIova = iova + ((base * 8n) << sh);
      let winLen = (avail * 8n) << sh;
      if (winIova + winLen - 1n > last) winLen = last - winIova + 1n;
      const winLast = winIova + winLen - 1n;
      t.setWindowShift(this.scratch, Number(winIova), pgshift, pgoff * 8, pinBytes * 8);
      if (ahead) {
        t.record(ahead[0], ahead[1]);
        ahead = null;
        t.setWindowShift(this.scratch, Number(winIova), pgshift, pgoff * 8, pinBytes * 8);
      }
      let pos = winIova;
      let stop = false;
      for (const a of areas) {
        const aLast = a.iova + a.length - 1n;
        if (aLast < pos) continue;
        if (a.iova > pos || pos > winLast) break;
        const e = aLast < winLast ? aLast : winLast;
        const r = dom.readAndClearDirty(Number(pos), Number(e - pos + 1n), flags, t, g);
        if (r < 0) {
          stop = true;
          break;
        }
        pos = e + 1n;
        if (pos > winLast) break;
      }
      if (pos <= winLast) stop = true; // a hole: -EINVAL after the areas before it
      if (t.spillStart >= 0) ahead = [t.spillStart, t.spillEnd - t.spillStart];
      if (task.copyToUser(pinStart, this.core.u8.slice(this.scratch, this.scratch + pinBytes)) !== 0) break;
      if (stop) break;
      base += (((winLen - 1n) >> sh) >> 3n) + 1n;
    }
    if (!(flags & U.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR)) dom.iotlbSync(g);
    return 0;
  }
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
      ctx.objects.delete(id);
      return 0;
    case "hwpt":
      if (o.devices.size) return -Errno.EBUSY;
      ctx.dropHwpt(o);
      return 0;
    case "device":
      return -Errno.EBUSY; // unbound through its owner (the selftest object)
    case "selftest":
      ctx.detach(o.idev);
      ctx.objects.delete(o.idev.id);
      ctx.objects.delete(id);
      return 0;
  }
};

const ioasAlloc: Handler = (ctx, u) => {
  if (u32(u, 4) !== 0) return -Errno.EOPNOTSUPP;
  const ioas: IoasObj = { kind: "ioas", id: ctx.allocId(), areas: [], hwpts: new Set() };
  u.dv.setUint32(8, ioas.id, true);
  ctx.objects.set(ioas.id, ioas);
  const r = ctx.respond(u);
  if (r < 0) ctx.objects.delete(ioas.id);
  return r;
};

const ioasMapH: Handler = (ctx, u) => {
  const flags = u32(u, 4);
  const valid = U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_WRITEABLE | U.IOMMU_IOAS_MAP_READABLE;
  if (flags & ~valid || u32(u, 12) !== 0) return -Errno.EOPNOTSUPP;
  const ioas = ctx.get(u32(u, 8), "ioas");
  if (!ioas) return -Errno.ENOENT;
  const uaddr = u64(u, 16);
  const length = u64(u, 24);
  let iova = u64(u, 32);
  if (iova >= U.U64_MAX || length >= U.U64_MAX) return -Errno.EOVERFLOW;
  if (!(flags & (U.IOMMU_IOAS_MAP_WRITEABLE | U.IOMMU_IOAS_MAP_READABLE)) || length === 0n) return -Errno.EINVAL;
  const prot = (flags & U.IOMMU_IOAS_MAP_READABLE ? 1 : 0) | (flags & U.IOMMU_IOAS_MAP_WRITEABLE ? 2 : 0);
  if (!(flags & U.IOMMU_IOAS_MAP_FIXED_IOVA)) {
    const align = iovaAlignment(ioas) > 4096n ? iovaAlignment(ioas) : 4096n;
    iova = ioasAllocIova(ioas, length, align);
    if (iova < 0n) return -Errno.ENOSPC;
  }
  const a: Area = { iova, length, uaddr, prot };
  const r = ioasMap(ioas, a);
  if (r < 0) return r;
  u.dv.setBigUint64(32, iova, true);
  return ctx.respond(u);
};

const ioasUnmapH: Handler = (ctx, u) => {
  const ioas = ctx.get(u32(u, 4), "ioas");
  if (!ioas) return -Errno.ENOENT;
  const iova = u64(u, 8);
  const length = u64(u, 16);
  let n: bigint | number;
  if (iova === 0n && length === U.U64_MAX) {
    n = ioasUnmap(ioas, 0n, U.U64_MAX);
    if (n === -Errno.ENOENT) n = 0n; // unmapping everything of an empty IOAS succeeds
  } else {
    if (iova >= U.U64_MAX || length >= U.U64_MAX) return -Errno.EOVERFLOW;
    if (length === 0n) return -Errno.EINVAL;
    if (iova + length - 1n > U.U64_MAX) return -Errno.EOVERFLOW;
    n = ioasUnmap(ioas, iova, iova + length - 1n);
  }
  if (typeof n === "number") return n;
  u.dv.setBigUint64(16, n, true);
  return ctx.respond(u);
};

const hwptAlloc: Handler = (ctx, u) => {
  const flags = u32(u, 4);
  if (flags & ~(U.IOMMU_HWPT_ALLOC_NEST_PARENT | U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING) || u32(u, 20) !== 0) return -Errno.EOPNOTSUPP;
  if (u32(u, 24) !== 0 || u32(u, 28) !== 0 || u64(u, 32) !== 0n) return -Errno.EOPNOTSUPP; // user data: the mock takes none
  const dev = ctx.get(u32(u, 8), "device");
  if (!dev) return -Errno.ENOENT;
  const ioas = ctx.get(u32(u, 12), "ioas");
  if (!ioas) return -Errno.ENOENT;
  const dirty = (flags & U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0;
  if (dirty && dev.flags & U.MOCK_FLAGS_DEVICE_NO_DIRTY) return -Errno.EOPNOTSUPP;
  const h = ctx.allocHwpt(ioas, dev, dirty, false);
  if (typeof h === "number") return h;
  u.dv.setUint32(16, h.id, true);
  const r = ctx.respond(u);
  if (r < 0) ctx.dropHwpt(h);
  return r;
};

const hwInfo: Handler = (ctx, u) => {
  if (u32(u, 4) !== 0 || u32(u, 28) !== 0) return -Errno.EOPNOTSUPP;
  const dev = ctx.get(u32(u, 8), "device");
  if (!dev) return -Errno.ENOENT;
  // struct iommu_test_hw_info { u32 flags; u32 test_reg = IOMMU_HW_INFO_SELFTEST_REGVAL }
  const info = new Uint8Array(8);
  new DataView(info.buffer).setUint32(4, 0xdeadbeef, true);
  const want = u32(u, 12);
  const uptr = u64(u, 16);
  if (want > 0) {
    const out = new Uint8Array(want);
    out.set(info.subarray(0, Math.min(want, 8)));
    if (u.task.copyToUser(uptr, out) !== 0) return -Errno.EFAULT;
  }
  u.dv.setUint32(12, 8, true);
  u.dv.setUint32(24, 0xfeedbeef, true); // IOMMU_HW_INFO_TYPE_SELFTEST
  u.dv.setBigUint64(32, dev.flags & U.MOCK_FLAGS_DEVICE_NO_DIRTY ? 0n : BigInt(U.IOMMU_HW_CAP_DIRTY_TRACKING), true);
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
  // iommufd_check_iova_range()
  const last = iova + length - 1n;
  if (last > U.U64_MAX || last < 0n) return -Errno.EOVERFLOW;
  const align = iovaAlignment(h.ioas);
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
  [U.IOMMU_HWPT_ALLOC, { ...U.SIZES.hwptAlloc, fn: hwptAlloc }],
  [U.IOMMU_GET_HW_INFO, { ...U.SIZES.hwInfo, fn: hwInfo }],
  [U.IOMMU_HWPT_SET_DIRTY_TRACKING, { ...U.SIZES.setDirtyTracking, fn: setDirtyTracking }],
  [U.IOMMU_HWPT_GET_DIRTY_BITMAP, { ...U.SIZES.getDirtyBitmap, fn: getDirtyBitmap }],
  [U.IOMMU_TEST_CMD, { ...U.SIZES.testCmd, fn: (ctx, u) => testCmd(ctx, u) }],
]);
