/**
 * Device backends on the model's IOMMU page tables (src/iommu/hw): the device's DMA goes
 * through the domain's IOTLB or a hardware walk of a Wasm page table in the VT-d
 * second-stage format, which sets the PTE dirty bits; the harvest is the driver's
 * read_and_clear_dirty walk over each RAM region into the VMM's bitmap (one bit per 4 KiB,
 * dirty leaves recorded whole), followed by the IOTLB sync that iommufd issues after a
 * clearing read. Tracking starts as IOMMU_HWPT_SET_DIRTY_TRACKING does: clear every D bit,
 * sync, then enable.
 */
import { Bitmap, bitmapBytes } from "../bitmap";
import { Errno } from "../uapi/errno";
import { WasmCore } from "../wasm/core";
import { DMA_OK, DmaDevice, PgtableDomain } from "../iommu/hw";
import { DirtyTarget, IOMMU_READ, IOMMU_WRITE, type IotlbGather } from "../iommu/pgtable";
import type { DeviceBackend, DirtyHarvester, DmaWriter, HarvestSink } from "./backend";
import { PAGE_SIZE, type GuestLayout, type RamRegion } from "./layout";
import type { DeviceSpec, Scenario } from "./scenario";

interface Region {
  readonly region: RamRegion;
  user: Bitmap | null;
}

/** One device attached to its own dirty-tracking page-table domain. */
export class ModelPageTable implements DeviceBackend, DmaWriter, DirtyHarvester {
  readonly fidelity = "partial" as const;
  readonly description: string;
  readonly call: string;
  readonly finalCall: string;
  readonly writer: DmaWriter = this;
  readonly harvester: DirtyHarvester = this;
  private readonly core = new WasmCore();
  private readonly regions: Region[];
  private readonly device: DmaDevice;
  private domain: PgtableDomain | null = null;
  private target: DirtyTarget | null = null;
  private gather: IotlbGather | null = null;

  /**
   * @param skipIotlbSync models a driver that forgets iommu_iotlb_sync() after clearing D
   *   bits: devices keep writing through cached dirty translations without setting D again,
   *   so dirty pages are lost (tests use it to show the no-lost-page check catches that).
   */
  constructor(readonly spec: DeviceSpec, private readonly layout: GuestLayout, _scenario: Scenario, private readonly skipIotlbSync = false) {
    this.regions = layout.regions.map((region) => ({ region, user: null }));
    this.device = new DmaDevice(spec.name);
    this.call = "read_and_clear_dirty walk + IOTLB sync (page tables in src/iommu/hw)";
    this.finalCall = `${this.call}, devices stopped`;
    this.description =
      `Wasm VT-d second-stage page table with D bits (src/iommu/hw): DMA through IOTLB/walk, ` +
      `harvest by the driver's read_and_clear_dirty; the ${spec.kind === "iommufd" ? "iommufd HWPT_GET_DIRTY_BITMAP" : "type1 GET_BITMAP"} ioctl layer above it is not modelled yet`;
  }

  setup(): number {
    // Leaves up to the host page backing RAM: 4K mappings give 4K PTEs, 2M gives 2M leaves.
    let pgsizes = 0;
    for (const s of [2 ** 12, 2 ** 21, 2 ** 30]) if (s <= this.layout.mappingPageSize) pgsizes += s;
    this.domain = PgtableDomain.create(this.core, { format: "intel-ss", pgsizeBitmap: pgsizes, dirtyTracking: true });
    this.target = DirtyTarget.create(this.core);
    this.gather = this.domain?.newGather() ?? null;
    if (!this.domain || !this.target || !this.gather) return -Errno.ENOMEM;
    for (const r of this.regions) {
      const ret = this.domain.map(r.region.iova, r.region.iova, r.region.bytes, IOMMU_READ | IOMMU_WRITE);
      if (ret < 0) return ret;
      r.user = Bitmap.create(this.core, r.region.pages);
      if (!r.user) return -Errno.ENOMEM;
    }
    this.device.attach(this.domain);
    return 0;
  }

  start(): number {
    const d = this.domain!;
    // iopt_clear_dirty_data(): a clearing pass with no bitmap over every area, one sync.
    for (const r of this.regions) {
      const ret = d.readAndClearDirty(r.region.iova, r.region.bytes, 0, null, this.gather!);
      if (ret < 0) return ret;
    }
    d.iotlbSync(this.gather!);
    return d.setDirtyTracking(true);
  }

  write(ramPage: number, npages: number): number {
    const s = this.device.write(this.layout.iovaOf(ramPage), npages * PAGE_SIZE);
    return s === DMA_OK ? 0 : -Errno.EFAULT;
  }

  harvest(): number {
    const d = this.domain!;
    for (const r of this.regions) {
      const user = r.user!;
      user.clear(); // the caller zero-fills the bitmap (UAPI)
      this.target!.setBitmap(user, r.region.iova, PAGE_SIZE);
      const ret = d.readAndClearDirty(r.region.iova, r.region.bytes, 0, this.target!, this.gather!);
      if (ret < 0) return ret;
    }
    // Cleared D bits are trusted only once cached translations are gone.
    if (this.skipIotlbSync) this.gather!.release();
    else d.iotlbSync(this.gather!);
    return 0;
  }

  finalHarvest(): number {
    return this.harvest();
  }

  collect(sink: HarvestSink): void {
    for (const r of this.regions) {
      if (!r.user) continue;
      sink(r.region.ramPage, this.core.u8.subarray(r.user.ptr, r.user.ptr + bitmapBytes(r.region.pages)), r.region.pages);
    }
  }

  dispose(): void {
    this.device.attach(null);
    for (const r of this.regions) r.user?.dispose();
    this.gather?.dispose();
    this.domain?.destroy();
    this.domain = null;
  }
}
