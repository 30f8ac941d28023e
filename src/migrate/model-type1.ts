/**
 * Device backends on the model's VFIO type1 container (src/type1/): a simulated VMM
 * process opens /dev/vfio/vfio and the device's group, maps each guest RAM region with
 * VFIO_IOMMU_MAP_DMA, starts tracking with VFIO_IOMMU_DIRTY_PAGES, harvests with
 * DIRTY_PAGES GET_BITMAP (argument structs in its own user memory, the bytes Linux reads),
 * and tears down with UNMAP_DMA + GET_DIRTY_BITMAP for the final harvest. An emulated
 * device uses the in-kernel interface: vfio_pin_pages() for its rings and vfio_dma_rw()
 * for its other writes.
 *
 * Kinds: `type1` (an IOMMU-backed group: Linux reports every mapped page dirty),
 * `emulated` (an emulated group in pinned-page scope) and `hw-type1` (an IOMMU-backed group
 * on a platform whose domains are Wasm page tables with dirty bits: the device's DMA goes
 * through the IOTLB / page walk and GET_BITMAP harvests the page tables; a model extension,
 * Linux's type1 never reads IOMMU dirty bits).
 *
 * RAM is mapped so that each region is backed by host pages of the mapping page size, as
 * hugetlbfs would back it: the simulated process hands out physical ranges in mmap order,
 * so the VMM maps its RAM first and pads between regions to keep them aligned; then
 * iommu_map() can use leaves of that size.
 */
import { Errno } from "../uapi/errno";
import {
  DirtyBitmap,
  DirtyBitmapGet,
  DmaMap,
  DmaUnmap,
  VfioBitmap,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  CapMigration,
  DIRTY_BITMAP_PAGES_MAX,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
  VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  IOMMU_WRITE,
} from "../uapi/vfio";
import { Process } from "../process";
import { vtdPlatform, type Platform, type PlatformGroup } from "../iommu/platform";
import { DMA_OK, DmaDevice } from "../iommu/hw/device";
import { HwIommuDomain, withHardwareDirty } from "../iommu/hw/iommu-domain";
import { DEFAULT_TYPE1_OPTIONS, VfioContainer, installVfio, type1Kernel, type VfioEmulatedDevice, type VfioIommu } from "../type1";
import { bitmapBytes } from "../bitmap";
import type { DeviceBackend, DirtyHarvester, DmaWriter, HarvestSink } from "./backend";
import { PAGE_SIZE, type GuestLayout, type RamRegion } from "./layout";
import type { DeviceSpec, Scenario } from "./scenario";
import { formatBytes } from "./units";

interface Region {
  readonly region: RamRegion;
  /** Where the VMM mmap'ed this RAM region. */
  vaddr: number;
  /** The VMM's user bitmap for this region. */
  bitmap: number;
  bitmapBytes: number;
  mapped: boolean;
  /** The next harvest passes an unmapped bitmap for this region (harvest-fails scenario). */
  breakBitmap: boolean;
  /** The last harvest filled this region's user bitmap. */
  harvested: boolean;
}

/** A VMM process with one container and one device group, on the model's type1. */
export class ModelType1 implements DeviceBackend, DmaWriter, DirtyHarvester {
  readonly fidelity = "model" as const;
  readonly description: string;
  readonly call = "VFIO_IOMMU_DIRTY_PAGES GET_BITMAP";
  readonly finalCall = "VFIO_IOMMU_UNMAP_DMA + GET_DIRTY_BITMAP";
  readonly writer: DmaWriter = this;
  readonly harvester: DirtyHarvester = this;
  private readonly proc: Process;
  private readonly regions: Region[];
  private readonly group: PlatformGroup;
  private readonly platform: Platform;
  private container = -1;
  private arg = 0;
  private iommu: VfioIommu | null = null;
  private device: VfioEmulatedDevice | null = null;
  /** The bytes an emulated device's dma_rw writes (grown to the largest run). */
  private buffer = new Uint8Array(0);
  /** `hw-type1`: the device, attached to the container's page-table domain. */
  private dmaDevice: DmaDevice | null = null;
  /** What the emulated device has pinned: npages by first IOVA. */
  private readonly pinnedAt = new Map<bigint, number>();
  /** Pinned pages of an emulated device, as [ramPage, npages] runs. */
  private readonly pinned: ReadonlyArray<[number, number]>;

  constructor(readonly spec: DeviceSpec, private readonly layout: GuestLayout, private readonly scenario: Scenario, pinned: ReadonlyArray<[number, number]>) {
    this.pinned = pinned;
    this.regions = layout.regions.map((region) => ({ region, vaddr: 0, bitmap: 0, bitmapBytes: 0, mapped: false, breakBitmap: false, harvested: false }));
    const base = vtdPlatform();
    // The group's device keeps VT-d's MSI window (in the PCI hole, so RAM never covers it).
    this.group = { ...base.groups[0], devices: [{ ...base.groups[0].devices[0], name: spec.name }], emulated: spec.kind === "emulated" };
    // 48-bit IOVA so that 1 TiB of RAM above 4 GiB fits the aperture; IOMMU page sizes up to
    // the host page backing RAM (a 4 KiB-backed guest gets no 2 MiB leaves).
    let pgsizes = 0n;
    for (const s of [2n ** 12n, 2n ** 21n, 2n ** 30n]) if (s <= BigInt(layout.mappingPageSize)) pgsizes |= s;
    const plain: Platform = {
      ...base,
      name: "vtd-48",
      iommu: { ...base.iommu, pgsizeBitmap: pgsizes, aperture: { start: 0n, end: (1n << 48n) - 1n } },
      groups: [this.group],
    };
    this.platform = spec.kind === "hw-type1" ? withHardwareDirty(plain, "intel-ss") : plain;
    this.description = {
      emulated: "type1 container (src/type1), emulated group in pinned-page scope: vfio_pin_pages + vfio_dma_rw",
      type1: "type1 container (src/type1), IOMMU-backed group without dirty tracking",
      "hw-type1":
        "type1 container (src/type1) on dirty-capable hardware (VT-d second-stage page tables in Wasm, src/iommu/hw): " +
        "DMA through the IOTLB / page walk sets D bits, GET_BITMAP harvests them (a model extension)",
      iommufd: "",
      mlx5: "",
    }[spec.kind];
    const profile = scenario.type1Profile ?? DEFAULT_TYPE1_OPTIONS.profile;
    this.proc = new Process({ gup: type1Kernel(profile).gup });
    installVfio(this.proc, this.platform, { bitmapCopy: scenario.bitmapCopy, profile });
  }

  private ioctl(fd: number, cmd: number, args: Uint8Array): number {
    const w = this.proc.write(this.arg, args);
    if (w.ret < 0) return -w.errno;
    const r = this.proc.ioctl(fd, cmd, this.arg);
    return r.ret < 0 ? -r.errno : r.ret;
  }

  setup(): number {
    const p = this.proc;
    // Guest RAM first, each region followed by a pad that keeps the next one's backing
    // aligned to the host page size (mappings are placed PAGE_SIZE apart physically).
    const align = this.layout.mappingPageSize;
    for (const reg of this.regions) {
      const m = p.mmap(undefined, reg.region.bytes);
      if (m.ret < 0) return -m.errno;
      reg.vaddr = m.ret;
      if (align > PAGE_SIZE && p.mmap(undefined, align - 2 * PAGE_SIZE).ret < 0) return -Errno.ENOMEM;
    }
    const arg = p.mmap(undefined, PAGE_SIZE);
    if (arg.ret < 0) return -arg.errno;
    this.arg = arg.ret;
    const c = p.open("/dev/vfio/vfio");
    if (c.ret < 0) return -c.errno;
    this.container = c.ret;
    const g = p.open(`/dev/vfio/${this.group.id}`);
    if (g.ret < 0) return -g.errno;
    const fdArg = new Uint8Array(4);
    new DataView(fdArg.buffer).setInt32(0, this.container, true);
    let r = this.ioctl(g.ret, VFIO_GROUP_SET_CONTAINER, fdArg);
    if (r < 0) return r;
    r = p.ioctl(this.container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU).ret < 0 ? -Errno.ENODEV : 0;
    if (r < 0) return r;
    for (const reg of this.regions) {
      r = this.mapDma(reg);
      if (r < 0) return r;
      reg.bitmapBytes = bitmapBytes(reg.region.pages);
      const b = p.mmap(undefined, Math.ceil(reg.bitmapBytes / PAGE_SIZE) * PAGE_SIZE);
      if (b.ret < 0) return -b.errno;
      reg.bitmap = b.ret;
    }
    if (this.spec.kind === "emulated") return this.setupEmulated();
    if (this.spec.kind === "hw-type1") {
      const f = this.proc.fdget(this.container);
      const domain = f instanceof VfioContainer ? f.iommu?.domainList[0]?.domain : undefined;
      if (!(domain instanceof HwIommuDomain)) return -Errno.ENODEV;
      this.dmaDevice = new DmaDevice(this.spec.name);
      this.dmaDevice.attach(domain.hw);
    }
    return 0;
  }

  /** VFIO_IOMMU_MAP_DMA of one RAM region at its guest-physical IOVA. */
  private mapDma(reg: Region): number {
    const map = new Uint8Array(DmaMap.SIZE);
    const dv = new DataView(map.buffer);
    dv.setUint32(DmaMap.argsz, DmaMap.SIZE, true);
    dv.setUint32(DmaMap.flags, VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE, true);
    dv.setBigUint64(DmaMap.vaddr, BigInt(reg.vaddr), true);
    dv.setBigUint64(DmaMap.iova, BigInt(reg.region.iova), true);
    dv.setBigUint64(DmaMap.size, BigInt(reg.region.bytes), true);
    const r = this.ioctl(this.container, VFIO_IOMMU_MAP_DMA, map);
    if (r >= 0) reg.mapped = true;
    return r;
  }

  /** VFIO_IOMMU_UNMAP_DMA of one region, with GET_DIRTY_BITMAP into its user bitmap when `withBitmap`. */
  private unmapDma(reg: Region, withBitmap: boolean): number {
    const a = new Uint8Array(DmaUnmap.SIZE + (withBitmap ? VfioBitmap.SIZE : 0));
    const dv = new DataView(a.buffer);
    dv.setUint32(DmaUnmap.argsz, a.length, true);
    dv.setUint32(DmaUnmap.flags, withBitmap ? VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP : 0, true);
    dv.setBigUint64(DmaUnmap.iova, BigInt(reg.region.iova), true);
    dv.setBigUint64(DmaUnmap.size, BigInt(reg.region.bytes), true);
    if (withBitmap) {
      dv.setBigUint64(DmaUnmap.data + VfioBitmap.pgsize, BigInt(PAGE_SIZE), true);
      dv.setBigUint64(DmaUnmap.data + VfioBitmap.size, BigInt(reg.bitmapBytes), true);
      dv.setBigUint64(DmaUnmap.data + VfioBitmap.data, BigInt(reg.bitmap), true);
    }
    const r = this.ioctl(this.container, VFIO_IOMMU_UNMAP_DMA, a);
    if (r >= 0) reg.mapped = false;
    return r;
  }

  remapRegion(index: number, queryFirst: boolean, sink: HarvestSink): number {
    const reg = this.regions[index];
    // Unmap-with-bitmap is type1's way to query a range's dirty bits as it goes away.
    let r = this.unmapDma(reg, queryFirst);
    if (r < 0) return r;
    if (queryFirst) {
      const bytes = this.proc.read(reg.bitmap, reg.bitmapBytes);
      if (bytes) sink(reg.region.ramPage, bytes, reg.region.pages);
    }
    r = this.mapDma(reg);
    if (r < 0) return r;
    // The unmap notifier made the vendor driver unpin its rings there: it pins them again.
    return this.pinRuns(reg);
  }

  breakNextHarvest(index: number): void {
    if (this.regions[index]) this.regions[index].breakBitmap = true;
  }

  migrationBlocker(): string | null {
    // VFIO_IOMMU_GET_INFO with room for the capability chain, in the argument page.
    const a = new Uint8Array(PAGE_SIZE);
    new DataView(a.buffer).setUint32(0, PAGE_SIZE, true);
    if (this.ioctl(this.container, VFIO_IOMMU_GET_INFO, a) < 0) return null;
    const back = this.proc.read(this.arg, PAGE_SIZE);
    if (!back) return null;
    const dv = new DataView(back.buffer, back.byteOffset, back.length);
    if (!(dv.getUint32(4, true) & VFIO_IOMMU_INFO_CAPS)) return "the container reports no migration capability";
    for (let off = dv.getUint32(16, true); off > 0 && off + 32 <= PAGE_SIZE; off = dv.getUint32(off + 4, true)) {
      if (dv.getUint16(off, true) !== VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION) continue;
      const pgsizes = dv.getBigUint64(off + CapMigration.pgsize_bitmap, true);
      const max = dv.getBigUint64(off + CapMigration.max_dirty_bitmap_size, true);
      const pgsize = pgsizes & -pgsizes;
      for (const reg of this.regions) {
        const pages = BigInt(reg.region.bytes) / pgsize;
        const bytes = ((pages + 63n) / 64n) * 8n;
        // QEMU compares the bitmap's bytes with max_dirty_bitmap_size; the kernel also caps a
        // mapping at INT_MAX pages (DIRTY_BITMAP_PAGES_MAX), one page short of a full 256 MiB.
        if (bytes > max || pages > DIRTY_BITMAP_PAGES_MAX)
          return (
            `RAM region ${reg.region.name} (${formatBytes(reg.region.bytes)}, ${pages} pages of ${formatBytes(Number(pgsize))}) needs a ` +
            `${formatBytes(Number(bytes))} dirty bitmap; the container's max_dirty_bitmap_size is ${formatBytes(Number(max))} ` +
            `and a mapping may have at most ${DIRTY_BITMAP_PAGES_MAX} pages: type1 cannot track it (DIRTY_PAGES START would fail with EINVAL)`
          );
      }
      return null;
    }
    return "the container reports no migration capability";
  }

  /** Registers the emulated device and pins its rings (at most 512 pages per vfio_pin_pages). */
  private setupEmulated(): number {
    const f = this.proc.fdget(this.container);
    if (!(f instanceof VfioContainer) || !f.iommu) return -Errno.ENODEV;
    this.iommu = f.iommu;
    const pinned = this.pinnedAt;
    this.device = {
      group: this.group,
      // The notifier: unpin whatever this device pinned inside the unmapped range.
      dmaUnmap: (iova, length) => {
        for (const [start, n] of [...pinned]) {
          if (start >= iova && start < iova + length) {
            this.iommu!.unpinPages(start, n);
            pinned.delete(start);
          }
        }
      },
    };
    const r = this.iommu.registerDevice(this.device);
    if (r < 0) return r;
    for (const reg of this.regions) {
      const p = this.pinRuns(reg);
      if (p < 0) return p;
    }
    return 0;
  }

  /** Pins the emulated device's rings inside `reg` (at most 512 pages per vfio_pin_pages). */
  private pinRuns(reg: Region): number {
    if (!this.iommu || !this.device) return 0;
    const lo = reg.region.ramPage;
    const hi = lo + reg.region.pages;
    for (const [page, n] of this.pinned) {
      if (page < lo || page >= hi) continue;
      for (let done = 0; done < n; done += 512) {
        const k = Math.min(512, n - done);
        const iova = BigInt(this.layout.iovaOf(page + done));
        const r = this.iommu.pinPages(this.device, iova, k, IOMMU_WRITE).ret;
        if (r < 0) return r;
        this.pinnedAt.set(iova, k);
      }
    }
    return 0;
  }

  start(): number {
    const a = new Uint8Array(DirtyBitmap.SIZE);
    const dv = new DataView(a.buffer);
    dv.setUint32(DirtyBitmap.argsz, DirtyBitmap.SIZE, true);
    dv.setUint32(DirtyBitmap.flags, VFIO_IOMMU_DIRTY_PAGES_FLAG_START, true);
    return this.ioctl(this.container, VFIO_IOMMU_DIRTY_PAGES, a);
  }

  write(ramPage: number, npages: number): number {
    if (this.dmaDevice) {
      const s = this.dmaDevice.write(this.layout.iovaOf(ramPage), npages * PAGE_SIZE);
      return s === DMA_OK ? 0 : -Errno.EFAULT;
    }
    if (this.spec.kind !== "emulated") return 0; // DMA through a domain that records nothing
    // One vfio_dma_rw per run of pages outside the pinned rings (those are written through
    // the pinned page's kernel mapping): the device's buffer, whole pages.
    const iommu = this.iommu!;
    for (let i = 0; i < npages; ) {
      if (this.isPinned(ramPage + i)) {
        i++;
        continue;
      }
      let n = 1;
      while (i + n < npages && !this.isPinned(ramPage + i + n)) n++;
      if (this.buffer.length < n * PAGE_SIZE) this.buffer = new Uint8Array(n * PAGE_SIZE).fill(0xa5);
      const ret = iommu.dmaRw(null, BigInt(this.layout.iovaOf(ramPage + i)), this.buffer.subarray(0, n * PAGE_SIZE), true);
      if (ret < 0) return ret;
      i += n;
    }
    return 0;
  }

  private isPinned(page: number): boolean {
    for (const [p, n] of this.pinned) if (page >= p && page < p + n) return true;
    return false;
  }

  /** DIRTY_PAGES GET_BITMAP of one region into its user bitmap. */
  private getBitmap(reg: Region): number {
    const a = new Uint8Array(DirtyBitmap.SIZE + DirtyBitmapGet.SIZE);
    const dv = new DataView(a.buffer);
    const get = DirtyBitmap.data;
    dv.setUint32(DirtyBitmap.argsz, a.length, true);
    dv.setUint32(DirtyBitmap.flags, VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP, true);
    dv.setBigUint64(get + DirtyBitmapGet.iova, BigInt(reg.region.iova), true);
    dv.setBigUint64(get + DirtyBitmapGet.size, BigInt(reg.region.bytes), true);
    dv.setBigUint64(get + DirtyBitmapGet.bitmap + VfioBitmap.pgsize, BigInt(PAGE_SIZE), true);
    dv.setBigUint64(get + DirtyBitmapGet.bitmap + VfioBitmap.size, BigInt(reg.bitmapBytes), true);
    // A broken bitmap (harvest-fails): an address nothing is mapped at, so copy_to_user faults.
    dv.setBigUint64(get + DirtyBitmapGet.bitmap + VfioBitmap.data, BigInt(reg.breakBitmap ? 0 : reg.bitmap), true);
    reg.breakBitmap = false;
    return this.ioctl(this.container, VFIO_IOMMU_DIRTY_PAGES, a);
  }

  harvest(): number {
    for (const reg of this.regions) reg.harvested = false;
    for (const reg of this.regions) {
      const r = this.getBitmap(reg);
      if (r < 0) return r;
      reg.harvested = true;
    }
    return 0;
  }

  finalHarvest(): number {
    for (const reg of this.regions) reg.harvested = false;
    for (const reg of this.regions) {
      const r = this.unmapDma(reg, true);
      if (r < 0) return r;
      reg.harvested = true;
    }
    return 0;
  }

  collect(sink: HarvestSink): void {
    for (const reg of this.regions) {
      if (!reg.harvested) continue; // a failed harvest left this bitmap stale
      const bytes = this.proc.read(reg.bitmap, reg.bitmapBytes);
      if (bytes) sink(reg.region.ramPage, bytes, reg.region.pages);
    }
  }

  dispose(): void {
    this.dmaDevice?.attach(null);
    if (this.device && this.iommu) this.iommu.unregisterDevice(this.device);
    this.proc.exit();
  }
}
