/**
 * STAND-IN backends, used until the model's own subsystems land (issue 3: the type1
 * container with GET_BITMAP, unmap-with-bitmap, pin_pages and dma_rw; issue 4: Wasm page
 * tables with hardware dirty bits and iommufd HWPT_GET_DIRTY_BITMAP). They are NOT those
 * subsystems: no ioctl decoding, no simulated process, no page-table walk. They keep the
 * kernel's dirty-reporting rules on Wasm bitmaps so the migration engine can run end to end:
 *
 * - type1 kinds keep a per-mapping bitmap (vfio_dma.bitmap) and copy it out per region with
 *   update_user_bitmap()'s word algorithm (`pack`, in the chosen byte/word/simd variant),
 *   clear-on-read, re-setting pinned pages after each read (vfio_dma_populate_bitmap);
 *   a plain IOMMU-backed device sets every bit first (num_non_pinned_groups != 0).
 * - hardware-dirty kinds keep one dirty bit per IOMMU leaf (the PTE D bit) and expand each
 *   dirty leaf to its 4 KiB pages on read, as the walkers record the full leaf size.
 *
 * Every backend here reports `fidelity: "stand-in"`; reports and the CLI say so.
 */
import { Bitmap, bitmapBytes, pack } from "../bitmap";
import { Errno } from "../uapi/errno";
import { WasmCore } from "../wasm/core";
import type { DeviceBackend, DirtyHarvester, DmaWriter, HarvestSink } from "./backend";
import type { GuestLayout, RamRegion } from "./layout";
import type { DeviceKind, DeviceSpec, Scenario } from "./scenario";

/** One RAM region as a backend sees it: its mapping and bitmaps in the backend's memory. */
interface MappedRegion {
  readonly region: RamRegion;
  /** vfio_dma.bitmap (type1 kinds): one bit per 4 KiB page, clear-on-read. */
  dma: Bitmap | null;
  /** PTE dirty bits (hardware kinds): one bit per IOMMU leaf. */
  leaves: Bitmap | null;
  /** Pages pinned through pin_pages (emulated kind). */
  pinned: Bitmap | null;
  /** The VMM's user bitmap the harvest fills, one bit per 4 KiB page. */
  user: Bitmap | null;
  mapped: boolean;
}

/** Shared plumbing: per-region allocation in a private Wasm memory, lookup, disposal. */
abstract class StandInBase implements DeviceBackend, DmaWriter, DirtyHarvester {
  readonly fidelity = "stand-in" as const;
  abstract readonly description: string;
  abstract readonly call: string;
  abstract readonly finalCall: string;
  readonly writer: DmaWriter = this;
  readonly harvester: DirtyHarvester = this;
  protected readonly core = new WasmCore();
  protected readonly regions: MappedRegion[];
  protected tracking = false;
  protected readonly pagesPerLeaf: number;

  constructor(readonly spec: DeviceSpec, protected readonly layout: GuestLayout, protected readonly scenario: Scenario) {
    this.regions = layout.regions.map((region) => ({ region, dma: null, leaves: null, pinned: null, user: null, mapped: false }));
    this.pagesPerLeaf = layout.pagesPerLeaf;
  }

  /** Allocates what this kind keeps per region; -ENOMEM when linear memory cannot hold it. */
  protected allocRegions(want: { dma: boolean; leaves: boolean; pinned: boolean }): number {
    for (const r of this.regions) {
      const pages = r.region.pages;
      r.user = Bitmap.create(this.core, pages);
      if (want.dma) r.dma = Bitmap.create(this.core, pages);
      if (want.leaves) r.leaves = Bitmap.create(this.core, pages / this.pagesPerLeaf);
      if (want.pinned) r.pinned = Bitmap.create(this.core, pages);
      if (!r.user || (want.dma && !r.dma) || (want.leaves && !r.leaves) || (want.pinned && !r.pinned)) {
        this.dispose();
        return -Errno.ENOMEM;
      }
      r.mapped = true;
    }
    return 0;
  }

  /** The mapped region holding RAM page `page`, or null (an IOVA with no mapping). */
  protected find(page: number, npages: number): MappedRegion | null {
    for (const r of this.regions) {
      const off = page - r.region.ramPage;
      if (off >= 0 && off + npages <= r.region.pages) return r.mapped ? r : null;
    }
    return null;
  }

  abstract setup(): number;
  abstract start(): number;
  abstract write(ramPage: number, npages: number): number;
  abstract harvest(): number;

  finalHarvest(): number {
    const ret = this.harvest();
    if (ret < 0) return ret;
    // After the final read the source's mappings go away; a late write would now fault.
    for (const r of this.regions) r.mapped = false;
    return 0;
  }

  collect(sink: HarvestSink): void {
    for (const r of this.regions) {
      if (!r.user) continue;
      const n = r.region.pages;
      sink(r.region.ramPage, this.core.u8.subarray(r.user.ptr, r.user.ptr + bitmapBytes(n)), n);
    }
  }

  /** Sets the PTE dirty bits of every leaf that pages [off, off+n) of `r` fall in. */
  protected dirtyLeaves(r: MappedRegion, off: number, n: number): void {
    const first = Math.floor(off / this.pagesPerLeaf);
    const last = Math.floor((off + n - 1) / this.pagesPerLeaf);
    r.leaves!.set(first, last - first + 1);
  }

  /**
   * Read-and-clear of the PTE dirty bits into `dst` (4 KiB granule): every dirty leaf is
   * recorded with its full size, as the AMD/Intel/ARM walkers record (iova, leaf size).
   */
  protected walkLeaves(r: MappedRegion, dst: Bitmap): void {
    const leaves = r.leaves!;
    if (this.pagesPerLeaf === 1) {
      this.core.x.orBits(dst.ptr, 0, leaves.ptr, leaves.nbits);
    } else {
      for (let l = leaves.findNextSet(0); l < leaves.nbits; l = leaves.findNextSet(l + 1)) dst.set(l * this.pagesPerLeaf, this.pagesPerLeaf);
    }
    leaves.clear();
  }

  dispose(): void {
    for (const r of this.regions) {
      for (const b of [r.dma, r.leaves, r.pinned, r.user]) b?.dispose();
      r.dma = r.leaves = r.pinned = r.user = null;
      r.mapped = false;
    }
  }
}

/**
 * STAND-IN for the type1 container (issue 3) with one device of kind `type1`, `emulated` or
 * `hw-type1` (the last also stands in for issue 4's dirty-capable page tables).
 */
export class StandInType1 extends StandInBase {
  readonly call = "VFIO_IOMMU_DIRTY_PAGES GET_BITMAP";
  readonly finalCall = "VFIO_IOMMU_UNMAP_DMA + GET_DIRTY_BITMAP";
  readonly description: string;

  constructor(spec: DeviceSpec, layout: GuestLayout, scenario: Scenario, private readonly pinnedRuns: ReadonlyArray<[number, number]>) {
    super(spec, layout, scenario);
    const what: Record<DeviceKind, string> = {
      type1: "type1 container, IOMMU-backed group without dirty tracking",
      emulated: "type1 container, emulated group in pinned-page scope (pin_pages + dma_rw)",
      "hw-type1": "type1 container on an IOMMU with PTE dirty bits",
      iommufd: "",
      mlx5: "",
    };
    this.description = `STAND-IN for ${what[spec.kind]}: per-mapping bitmaps and update_user_bitmap on Wasm bitmaps (${scenario.bitmapCopy} copy)`;
  }

  setup(): number {
    const kind = this.spec.kind;
    const ret = this.allocRegions({ dma: true, leaves: kind === "hw-type1", pinned: kind === "emulated" });
    if (ret < 0) return ret;
    for (const [page, n] of this.pinnedRuns) {
      const r = this.find(page, n);
      if (!r) return -Errno.EINVAL;
      r.pinned!.set(page - r.region.ramPage, n);
    }
    return 0;
  }

  start(): number {
    this.tracking = true;
    // vfio_dma_bitmap_alloc_all(): fresh bitmaps, then the pages already pinned externally.
    for (const r of this.regions) {
      r.dma!.clear();
      if (r.pinned) this.core.x.orBits(r.dma!.ptr, 0, r.pinned.ptr, r.region.pages);
      if (r.leaves) r.leaves.clear();
    }
    return 0;
  }

  write(ramPage: number, npages: number): number {
    const r = this.find(ramPage, npages);
    if (!r) return -Errno.EINVAL;
    const off = ramPage - r.region.ramPage;
    switch (this.spec.kind) {
      case "type1":
        // DMA through an IOMMU that records nothing: the kernel cannot know what was written.
        return 0;
      case "emulated":
        // Writes into its pinned rings go through the kernel mapping of the pinned page
        // (already reported on every read); anything else goes through vfio_dma_rw().
        if (r.pinned!.popcount(off, npages) === npages) return 0;
        if (this.tracking) r.dma!.set(off, npages);
        return 0;
      default:
        this.dirtyLeaves(r, off, npages);
        return 0;
    }
  }

  harvest(): number {
    if (!this.tracking) return -Errno.EINVAL;
    for (const r of this.regions) {
      if (!r.mapped) return -Errno.EINVAL;
      const dma = r.dma!;
      const pages = r.region.pages;
      if (this.spec.kind === "type1") dma.set(0, pages); // update_user_bitmap: all dirty
      if (r.leaves) this.walkLeaves(r, dma);
      // One GET_BITMAP per region with iova = dma.iova, as QEMU queries: shift 0.
      pack(this.core, this.scenario.bitmapCopy, r.user!.ptr, 0, dma.ptr, pages);
      dma.clear();
      if (r.pinned) this.core.x.orBits(dma.ptr, 0, r.pinned.ptr, pages);
    }
    return 0;
  }
}

/** STAND-IN for issue 4's iommufd HWPT with dirty tracking over Wasm page tables. */
export class StandInIommufd extends StandInBase {
  readonly call = "IOMMU_HWPT_GET_DIRTY_BITMAP";
  readonly finalCall = "IOMMU_HWPT_GET_DIRTY_BITMAP (devices stopped)";
  readonly description = "STAND-IN for iommufd HWPT_GET_DIRTY_BITMAP: one dirty bit per IOMMU leaf on a Wasm bitmap, expanded per leaf";

  setup(): number {
    return this.allocRegions({ dma: false, leaves: true, pinned: false });
  }

  start(): number {
    // HWPT_SET_DIRTY_TRACKING(ENABLE) first clears every D bit (iopt_clear_dirty_data).
    for (const r of this.regions) r.leaves!.clear();
    this.tracking = true;
    return 0;
  }

  write(ramPage: number, npages: number): number {
    const r = this.find(ramPage, npages);
    if (!r) return -Errno.EINVAL;
    this.dirtyLeaves(r, ramPage - r.region.ramPage, npages);
    return 0;
  }

  harvest(): number {
    if (!this.tracking) return -Errno.EINVAL;
    for (const r of this.regions) {
      if (!r.mapped) return -Errno.EINVAL;
      r.user!.clear(); // the caller zero-fills the bitmap (UAPI)
      this.walkLeaves(r, r.user!);
    }
    return 0;
  }
}
