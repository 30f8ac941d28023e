/**
 * A PgtableDomain behind the IommuDomain contract (src/iommu/domain.ts) that type1 uses,
 * with the optional dirty ops filled in: a platform whose IOMMU tracks dirty bits in its
 * page tables. `hw` is the underlying domain, to attach DmaDevices to.
 */
import { WasmCore } from "../../wasm/core";
import { Errno } from "../../uapi/errno";
import { Bitmap } from "../../bitmap";
import { DirtyTarget, PtFormat, IOMMU_DIRTY_NO_CLEAR } from "../pgtable";
import type { IommuDomain, IommuDirtyOps, DirtyRecorder, IovaRange } from "../domain";
import type { IommuParams, Platform } from "../platform";
import { PgtableDomain } from "./domain";

const LIMIT = 1n << 53n;

/** IommuDomain over a Wasm page table. */
export class PgtableIommuDomain implements IommuDomain, IommuDirtyOps {
  readonly pgsizeBitmap: bigint;
  readonly aperture: IovaRange;
  readonly enforceCacheCoherency: boolean;
  /** The hardware domain (page table + IOTLB) devices attach to. */
  readonly hw: PgtableDomain;
  readonly dirty: IommuDirtyOps;

  private constructor(hw: PgtableDomain, p: IommuParams) {
    this.hw = hw;
    this.pgsizeBitmap = BigInt(hw.pgsizeBitmap);
    this.aperture = { start: p.aperture.start, end: p.aperture.end < LIMIT ? p.aperture.end : LIMIT - 1n };
    this.enforceCacheCoherency = p.enforceCacheCoherency;
    this.dirty = this;
  }

  /** A dirty-tracking-capable domain of `format` with the platform's page sizes; null on ENOMEM. */
  static create(core: WasmCore, format: PtFormat, p: IommuParams): PgtableIommuDomain | null {
    const hw = PgtableDomain.create(core, { format, pgsizeBitmap: Number(p.pgsizeBitmap), dirtyTracking: true });
    return hw ? new PgtableIommuDomain(hw, p) : null;
  }

  private inAperture(iova: bigint, size: bigint): boolean {
    return iova >= this.aperture.start && size > 0n && iova + size - 1n <= this.aperture.end;
  }

  map(iova: bigint, paddr: bigint, size: bigint, prot: number): number {
    if (!this.inAperture(iova, size) || paddr + size > LIMIT) return -Errno.EINVAL;
    return this.hw.map(Number(iova), Number(paddr), Number(size), prot & 3);
  }

  unmap(iova: bigint, size: bigint): bigint {
    if (iova >= LIMIT || size === 0n) return 0n;
    const s = iova + size > LIMIT ? LIMIT - iova : size;
    return BigInt(this.hw.unmap(Number(iova), Number(s)));
  }

  iovaToPhys(iova: bigint): bigint | null {
    if (iova >= LIMIT) return null;
    const p = this.hw.iovaToPhys(Number(iova));
    return p < 0 ? null : BigInt(p);
  }

  setDirtyTracking(enable: boolean): number {
    return this.hw.setDirtyTracking(enable);
  }

  /**
   * Harvests [iova, iova+size) at the smallest page size into a scratch bitmap and reports
   * each run of dirty pages to `into`; clears (and flushes the IOTLB) unless NO_CLEAR.
   */
  readAndClearDirty(iova: bigint, size: bigint, into: DirtyRecorder, flags: number): number {
    if (size === 0n || iova + size > LIMIT) return -Errno.EINVAL;
    const pg = this.hw.table.minPageSize;
    const nbits = Math.ceil(Number(size) / pg);
    const core = this.hw.core;
    const bm = Bitmap.create(core, nbits);
    const t = DirtyTarget.create(core);
    const g = this.hw.newGather();
    try {
      if (!bm || !t || !g) return -Errno.ENOMEM;
      t.setBitmap(bm, Number(iova), pg);
      const r = this.hw.readAndClearDirty(Number(iova), Number(size), flags, t, g);
      if (!(flags & IOMMU_DIRTY_NO_CLEAR)) this.hw.iotlbSync(g);
      if (r < 0) return r;
      let i = bm.findNextSet(0);
      while (i < nbits) {
        let j = i + 1;
        while (j < nbits && bm.test(j)) j++;
        into.record(iova + BigInt(i * pg), BigInt((j - i) * pg));
        i = j < nbits ? bm.findNextSet(j) : nbits;
      }
      return 0;
    } finally {
      bm?.dispose();
      t?.dispose();
      g?.dispose();
    }
  }
}

/**
 * `base` with an IOMMU that tracks dirty bits in real page tables of `format`: type1 then
 * reports the pages devices wrote instead of every mapped page. Domains share `core`.
 */
export function dirtyTrackingPlatform(base: Platform, format: PtFormat, core: WasmCore = new WasmCore()): Platform {
  return {
    ...base,
    name: `${base.name}+hwdirty`,
    createDomain: (p: IommuParams): IommuDomain => {
      const d = PgtableIommuDomain.create(core, format, p);
      if (!d) throw new Error("vfio-sim: out of Wasm memory for a page-table domain");
      return d;
    },
  };
}
