/**
 * A page-table domain seen through the `IommuDomain` contract, so that a type1 container can
 * run on dirty-capable hardware: iommu_map/iommu_unmap go to the Wasm page table, and the
 * driver's dirty ops (set_dirty_tracking, read_and_clear_dirty) are exposed as
 * `IommuDomain.dirty`, including a bitmap fast path that harvests straight into a
 * Linux-layout bitmap in the same linear memory (no per-page callbacks).
 */
import type { WasmCore } from "../../wasm/core";
import { Errno } from "../../uapi/errno";
import type { DirtyRecorder, IommuDirtyOps, IommuDomain, IommuProt, IovaRange } from "../domain";
import { IOMMU_DIRTY_NO_CLEAR } from "../domain";
import type { IommuParams, Platform } from "../platform";
import { Bitmap } from "../../bitmap";
import { DirtyTarget, IotlbGather, defaultPgsizes, type PtFormat } from "../pgtable";
import { PgtableDomain } from "./domain";

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const PAGE = 4096n;

/** Page-table depth that covers an aperture ending at `end` with a 4 KiB granule. */
function levelsFor(end: bigint): number {
  const bits = end.toString(2).length;
  return Math.max(2, Math.ceil((bits - 12) / 9));
}

/** An `IommuDomain` backed by a `PgtableDomain` (a real page table with hardware dirty bits). */
export class HwIommuDomain implements IommuDomain {
  readonly pgsizeBitmap: bigint;
  readonly aperture: IovaRange;
  readonly enforceCacheCoherency: boolean;
  readonly dirty: IommuDirtyOps & HwDirtyBitmapOps;

  private constructor(
    /** The page-table domain: attach a `DmaDevice` to it to let a device write. */
    readonly hw: PgtableDomain,
    params: IommuParams,
    private readonly target: DirtyTarget,
    private readonly gather: IotlbGather,
  ) {
    this.pgsizeBitmap = BigInt(hw.pgsizeBitmap) & params.pgsizeBitmap;
    this.aperture = { ...params.aperture };
    this.enforceCacheCoherency = params.enforceCacheCoherency;
    this.dirty = {
      setDirtyTracking: (enable) => this.hw.setDirtyTracking(enable),
      readAndClearDirty: (iova, size, into, flags) => this.readAndClearDirty(iova, size, into, flags),
      readAndClearDirtyBitmap: (iova, size, pgsize, bitmapPtr, flags) => this.readAndClearDirtyBitmap(iova, size, pgsize, bitmapPtr, flags),
    };
  }

  /** Allocates a dirty-capable domain of `format` for a platform's parameters; null on ENOMEM. */
  static create(core: WasmCore, params: IommuParams, format: PtFormat): HwIommuDomain | null {
    if (params.aperture.end > MAX_SAFE) return null;
    // Leaves come only from sizes both the format and the platform support, as iommu_map()
    // picks them from domain->pgsize_bitmap. (AMD v1 alone would also use replicated
    // 8K..256G leaves, and a write would then dirty the whole leaf.)
    const pgsizes = BigInt(defaultPgsizes(format)) & params.pgsizeBitmap;
    if (pgsizes === 0n || pgsizes > MAX_SAFE) return null;
    const hw = PgtableDomain.create(core, {
      format,
      pgsizeBitmap: Number(pgsizes),
      levels: format === "amd-v1" ? undefined : levelsFor(params.aperture.end),
      dirtyTracking: true,
    });
    if (!hw) return null;
    const target = DirtyTarget.create(core);
    const gather = hw.newGather();
    if (!target || !gather) {
      target?.dispose();
      gather?.dispose();
      hw.destroy();
      return null;
    }
    return new HwIommuDomain(hw, params, target, gather);
  }

  destroy(): void {
    this.target.dispose();
    this.gather.dispose();
    this.hw.destroy();
  }

  map(iova: bigint, paddr: bigint, size: bigint, prot: IommuProt): number {
    if (iova < this.aperture.start || size <= 0n || iova + size - 1n > this.aperture.end) return -Errno.EINVAL;
    if (paddr + size > MAX_SAFE) return -Errno.EINVAL;
    return this.hw.map(Number(iova), Number(paddr), Number(size), prot);
  }

  unmap(iova: bigint, size: bigint): bigint {
    if (size <= 0n || iova > MAX_SAFE || iova + size > MAX_SAFE) return 0n;
    return BigInt(this.hw.unmap(Number(iova), Number(size)));
  }

  iovaToPhys(iova: bigint): bigint | null {
    if (iova < 0n || iova > MAX_SAFE) return null;
    const p = this.hw.iovaToPhys(Number(iova));
    return p < 0 ? null : BigInt(p);
  }

  /**
   * read_and_clear_dirty() into a Linux-layout bitmap at `bitmapPtr`: bit i stands for
   * [iova + i·pgsize, +pgsize); `bitmapPtr` 0 only clears. Bits are ORed in; a dirty leaf larger than `pgsize` sets
   * every bit it covers. Clearing is followed by an IOTLB sync, so later writes through
   * cached translations re-walk and mark the PTE again.
   */
  private readAndClearDirtyBitmap(iova: bigint, size: bigint, pgsize: bigint, bitmapPtr: number, flags: number): number {
    if (size <= 0n || pgsize < PAGE || (pgsize & (pgsize - 1n)) !== 0n || iova + size > MAX_SAFE) return -Errno.EINVAL;
    // bitmapPtr 0: the clear-only pass (no target), as iommufd's iopt_clear_dirty_data() does.
    if (bitmapPtr !== 0) this.target.setWindow(bitmapPtr, Number(iova), Number(pgsize), 0, Number(size / pgsize));
    const r = this.hw.readAndClearDirty(Number(iova), Number(size), flags, bitmapPtr !== 0 ? this.target : null, this.gather);
    if (!(flags & IOMMU_DIRTY_NO_CLEAR)) this.hw.iotlbSync(this.gather);
    return r < 0 ? r : 0;
  }

  /** The generic recorder path: harvest into a scratch bitmap, then report runs of dirty pages. */
  private readAndClearDirty(iova: bigint, size: bigint, into: DirtyRecorder, flags: number): number {
    const nbits = Number(size / PAGE);
    const scratch = Bitmap.create(this.hw.core, nbits);
    if (!scratch) return -Errno.ENOMEM;
    const r = this.readAndClearDirtyBitmap(iova, size, PAGE, scratch.ptr, flags);
    if (r === 0) {
      for (let i = scratch.findNextSet(0); i < nbits; ) {
        let j = i + 1;
        while (j < nbits && scratch.test(j)) j++;
        into.record(iova + BigInt(i) * PAGE, BigInt(j - i) * PAGE);
        i = scratch.findNextSet(j);
      }
    }
    scratch.dispose();
    return r;
  }
}

/** The bitmap fast path a hardware domain adds to `IommuDirtyOps`. */
export interface HwDirtyBitmapOps {
  /** read_and_clear_dirty() into a bitmap in the domain's linear memory; 0 or -errno. */
  readAndClearDirtyBitmap(iova: bigint, size: bigint, pgsize: bigint, bitmapPtr: number, flags: number): number;
}

/**
 * A copy of `base` whose IOMMU tracks dirty bits in its page tables (AMD HAD, Intel SSADE,
 * ARM HTTU): type1 containers on it harvest what devices actually wrote. `format` picks the
 * page-table format (default: Intel second stage, the format of the `vtd` preset).
 */
export function withHardwareDirty(base: Platform, format: PtFormat = "intel-ss"): Platform {
  return {
    ...base,
    name: `${base.name}+hwdirty`,
    createDomain: (params, core) => (core ? HwIommuDomain.create(core, params, format) : null),
  };
}
