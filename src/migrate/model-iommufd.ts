/**
 * Device backend on the model's iommufd (src/iommufd/): a simulated VMM process opens
 * /dev/iommu, allocates an IOAS, binds its device (iommufd_device_bind, as a VFIO device
 * cdev would), allocates a paging HWPT with IOMMU_HWPT_ALLOC_DIRTY_TRACKING for it and
 * attaches the device, maps each guest RAM region with IOMMU_IOAS_MAP at its guest-physical
 * IOVA, starts tracking with IOMMU_HWPT_SET_DIRTY_TRACKING and harvests every round, the
 * final one too, with IOMMU_HWPT_GET_DIRTY_BITMAP into bitmaps in its own memory (argument
 * structs in its memory, the bytes Linux reads). The device's DMA goes through the HWPT's
 * IOTLB / page walk (VT-d second-stage format in Wasm), which sets the D bits.
 *
 * The model's iommufd maps an area's user VA as its physical address, so the VMM aligns
 * each RAM region's VA to the host page size backing it, as a hugetlbfs mmap would be:
 * then the HWPT can use leaves of that size.
 */
import { Errno } from "../uapi/errno";
import { Process } from "../process";
import { IommufdCtx, installIommufd } from "../iommufd";
import * as U from "../iommufd/uapi";
import { DMA_OK, DmaDevice, type PgtableDomain } from "../iommu/hw";
import { bitmapBytes } from "../bitmap";
import type { WasmCore } from "../wasm/core";
import type { ConcurrentDevice, DeviceBackend, DirtyHarvester, DmaWriter, HarvestSink } from "./backend";
import { PAGE_SIZE, type GuestLayout, type RamRegion } from "./layout";
import type { DeviceSpec, Scenario } from "./scenario";

interface Region {
  readonly region: RamRegion;
  /** Where the VMM's RAM for this region starts (aligned to the mapping page size). */
  vaddr: number;
  /** The VMM's user bitmap for this region. */
  bitmap: number;
  bitmapBytes: number;
}

/** A VMM process with one iommufd context, one IOAS and one device on a dirty-tracking HWPT. */
export class ModelIommufd implements DeviceBackend, DmaWriter, DirtyHarvester {
  readonly fidelity = "model" as const;
  readonly description =
    "iommufd (src/iommufd): IOAS_MAP, dirty-tracking HWPT on VT-d second-stage page tables in Wasm " +
    "(src/iommu/hw), DMA through the IOTLB / page walk sets D bits, HWPT_GET_DIRTY_BITMAP harvests them";
  readonly call = "IOMMU_HWPT_GET_DIRTY_BITMAP";
  readonly finalCall = "IOMMU_HWPT_GET_DIRTY_BITMAP, devices stopped";
  readonly writer: DmaWriter = this;
  readonly harvester: DirtyHarvester = this;
  /** ioctls the VMM issued, by command number (tests check the harvest path). */
  readonly ioctlCounts = new Map<number, number>();
  private readonly proc: Process;
  private readonly regions: Region[];
  /** With a shared core: the HWPT's page table, for writes from worker threads. */
  concurrent: ConcurrentDevice | null = null;
  private readonly device: DmaDevice;
  private fd = -1;
  private arg = 0;
  private devId = 0;
  private hwptId = 0;
  private ioasId = 0;

  /**
   * @param skipIotlbSync models an IOMMU driver whose IOTLB flush after clearing D bits is
   *   missing: devices keep writing through cached dirty translations without setting D
   *   again, so dirty pages are lost (tests use it to show the no-lost-page check catches it).
   * @param core the VMM's Wasm core; a shared one (WasmCore.createShared) makes the device
   *   concurrent: its DMA may run in worker threads and the harvest uses per-PTE atomics.
   */
  constructor(readonly spec: DeviceSpec, private readonly layout: GuestLayout, _scenario: Scenario, private readonly skipIotlbSync = false, core?: WasmCore) {
    this.proc = new Process(core ? { core } : {});
    this.regions = layout.regions.map((region) => ({ region, vaddr: 0, bitmap: 0, bitmapBytes: 0 }));
    this.device = new DmaDevice(spec.name);
    installIommufd(this.proc);
  }

  /** Writes `args` to the VMM's argument page, issues the ioctl, reads the struct back. */
  private ioctl(cmd: number, args: Uint8Array): { ret: number; out: DataView | null } {
    this.ioctlCounts.set(cmd, (this.ioctlCounts.get(cmd) ?? 0) + 1);
    const w = this.proc.write(this.arg, args);
    if (w.ret < 0) return { ret: -w.errno, out: null };
    const r = this.proc.ioctl(this.fd, cmd, this.arg);
    if (r.ret < 0) return { ret: -r.errno, out: null };
    const back = this.proc.read(this.arg, args.length);
    return { ret: r.ret, out: back ? new DataView(back.buffer, back.byteOffset, back.length) : null };
  }

  private static struct(size: number, fill: (dv: DataView) => void): Uint8Array {
    const b = new Uint8Array(size);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, size, true);
    fill(dv);
    return b;
  }

  setup(): number {
    const p = this.proc;
    const align = this.layout.mappingPageSize;
    for (const reg of this.regions) {
      // Over-allocate and align, so that VA (= the model's physical address) suits the leaves.
      const m = p.mmap(undefined, reg.region.bytes + (align > PAGE_SIZE ? align : 0));
      if (m.ret < 0) return -m.errno;
      reg.vaddr = Math.ceil(m.ret / align) * align;
      reg.bitmapBytes = bitmapBytes(reg.region.pages);
      const b = p.mmap(undefined, Math.ceil(reg.bitmapBytes / PAGE_SIZE) * PAGE_SIZE);
      if (b.ret < 0) return -b.errno;
      reg.bitmap = b.ret;
    }
    const arg = p.mmap(undefined, PAGE_SIZE);
    if (arg.ret < 0) return -arg.errno;
    this.arg = arg.ret;
    const f = p.open("/dev/iommu");
    if (f.ret < 0) return -f.errno;
    this.fd = f.ret;
    const ctx = p.fdget(this.fd);
    if (!(ctx instanceof IommufdCtx)) return -Errno.ENODEV;

    const a = this.ioctl(U.IOMMU_IOAS_ALLOC, ModelIommufd.struct(U.SIZES.ioasAlloc.size, () => undefined));
    if (a.ret < 0 || !a.out) return a.ret < 0 ? a.ret : -Errno.EFAULT;
    const ioasId = a.out.getUint32(8, true);
    this.ioasId = ioasId;

    // VT-d with second-stage dirty bits, 48-bit IOVA; leaves up to the host page backing RAM.
    let pgsizes = 0;
    for (const s of [2 ** 12, 2 ** 21, 2 ** 30]) if (s <= align) pgsizes += s;
    const dev = ctx.bindDevice({ format: "intel-ss", pgsizeBitmap: pgsizes, apertureStart: 0n, apertureLast: (1n << 48n) - 1n, dirtyTracking: true });
    if (dev < 0) return dev;
    this.devId = dev;
    const h = this.ioctl(
      U.IOMMU_HWPT_ALLOC,
      ModelIommufd.struct(U.SIZES.hwptAlloc.size, (dv) => {
        dv.setUint32(4, U.IOMMU_HWPT_ALLOC_DIRTY_TRACKING, true);
        dv.setUint32(8, this.devId, true);
        dv.setUint32(12, ioasId, true);
      }),
    );
    if (h.ret < 0 || !h.out) return h.ret < 0 ? h.ret : -Errno.EFAULT;
    this.hwptId = h.out.getUint32(16, true);
    const at = ctx.attachDevice(this.devId, this.hwptId);
    if (at < 0) return at;

    for (const reg of this.regions) {
      const m = this.ioasMap(reg);
      if (m < 0) return m;
    }
    const hwpt = ctx.get(this.hwptId, "hwpt");
    if (!hwpt) return -Errno.ENOENT;
    if (this.skipIotlbSync) forgetIotlbSync(hwpt.domain);
    this.device.attach(hwpt.domain);
    if (this.proc.core.sharedMemory && hwpt.domain.table.setConcurrentDevices(true)) {
      const layout = this.layout;
      this.concurrent = { pageTable: hwpt.domain.table.ptr, iovaOf: (p) => layout.iovaOf(p) };
    }
    return 0;
  }

  /** IOMMU_IOAS_MAP of one RAM region at its guest-physical IOVA. */
  private ioasMap(reg: Region): number {
    return this.ioctl(
      U.IOMMU_IOAS_MAP,
      ModelIommufd.struct(U.SIZES.ioasMap.size, (dv) => {
        dv.setUint32(4, U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE, true);
        dv.setUint32(8, this.ioasId, true);
        dv.setBigUint64(16, BigInt(reg.vaddr), true);
        dv.setBigUint64(24, BigInt(reg.region.bytes), true);
        dv.setBigUint64(32, BigInt(reg.region.iova), true);
      }),
    ).ret;
  }

  remapRegion(index: number, queryFirst: boolean, sink: HarvestSink): number {
    const reg = this.regions[index];
    if (queryFirst) {
      // iommufd has no unmap-and-read: GET_DIRTY_BITMAP over the range, then unmap.
      const r = this.getDirtyBitmap(reg);
      if (r < 0) return r;
      const bytes = this.proc.read(reg.bitmap, reg.bitmapBytes);
      if (bytes) sink(reg.region.ramPage, bytes, reg.region.pages);
    }
    const u = this.ioctl(
      U.IOMMU_IOAS_UNMAP,
      ModelIommufd.struct(U.SIZES.ioasUnmap.size, (dv) => {
        dv.setUint32(4, this.ioasId, true);
        dv.setBigUint64(8, BigInt(reg.region.iova), true);
        dv.setBigUint64(16, BigInt(reg.region.bytes), true);
      }),
    ).ret;
    if (u < 0) return u;
    return this.ioasMap(reg);
  }

  start(): number {
    return this.ioctl(
      U.IOMMU_HWPT_SET_DIRTY_TRACKING,
      ModelIommufd.struct(U.SIZES.setDirtyTracking.size, (dv) => {
        dv.setUint32(4, U.IOMMU_HWPT_DIRTY_TRACKING_ENABLE, true);
        dv.setUint32(8, this.hwptId, true);
      }),
    ).ret;
  }

  write(ramPage: number, npages: number): number {
    const s = this.device.write(this.layout.iovaOf(ramPage), npages * PAGE_SIZE);
    return s === DMA_OK ? 0 : -Errno.EFAULT;
  }

  /** HWPT_GET_DIRTY_BITMAP of one region into its (zero-filled) user bitmap. */
  private getDirtyBitmap(reg: Region): number {
    // HWPT_GET_DIRTY_BITMAP only sets bits: the VMM zero-fills its bitmap first.
    const w = this.proc.write(reg.bitmap, new Uint8Array(reg.bitmapBytes));
    if (w.ret < 0) return -w.errno;
    return this.ioctl(
      U.IOMMU_HWPT_GET_DIRTY_BITMAP,
      ModelIommufd.struct(U.SIZES.getDirtyBitmap.size, (dv) => {
        dv.setUint32(4, this.hwptId, true);
        dv.setBigUint64(16, BigInt(reg.region.iova), true);
        dv.setBigUint64(24, BigInt(reg.region.bytes), true);
        dv.setBigUint64(32, BigInt(PAGE_SIZE), true);
        dv.setBigUint64(40, BigInt(reg.bitmap), true);
      }),
    ).ret;
  }

  harvest(): number {
    for (const reg of this.regions) {
      const r = this.getDirtyBitmap(reg);
      if (r < 0) return r;
    }
    return 0;
  }

  finalHarvest(): number {
    // iommufd has no unmap-and-read: after the devices stop, one more GET_DIRTY_BITMAP.
    return this.harvest();
  }

  collect(sink: HarvestSink): void {
    for (const reg of this.regions) {
      const bytes = this.proc.read(reg.bitmap, reg.bitmapBytes);
      if (bytes) sink(reg.region.ramPage, bytes, reg.region.pages);
    }
  }

  dispose(): void {
    this.device.attach(null);
    const ctx = this.fd >= 0 ? this.proc.fdget(this.fd) : null;
    if (ctx instanceof IommufdCtx && this.devId > 0) ctx.unbindDevice(this.devId);
    this.proc.exit();
  }
}

/** The driver bug `skipIotlbSync` models: cleared D bits are never flushed from the IOTLB. */
function forgetIotlbSync(domain: PgtableDomain): void {
  domain.iotlbSync = (gather) => gather.release();
}
