/**
 * The naive reference for test/iommu/range-domain.property.test.ts: RangeDomain as it was
 * before its extents became a struct-of-arrays table (src/iommu/extent-table.ts), copied
 * verbatim from commit da7bc89 (only the imports and the class name changed): a list of
 * Extent objects with BigInt fields, every check in BigInts.
 */
/**
 * A domain without page tables: a sorted list of mapped extents. Cost is per map call
 * (type1 maps one extent per pinned run), never per page, so terabyte guests are cheap.
 */
import { Errno } from "../../src/uapi/errno";
import { IovaList } from "../../src/util/sorted-list";
import { bigintToNumber } from "../../src/util/u64";
import type { IommuDomain, IommuProt, IovaRange } from "../../src/iommu/domain";

/**
 * One mapped extent. iova, size and paddr are usually the caller's BigInts (type1 passes its
 * dma's); `end` is the sum map() computes for its checks anyway, kept because UNMAP_DMA's
 * walk and every search ask for it.
 */
class Extent {
  constructor(
    readonly iova: bigint,
    readonly size: bigint,
    /** iova + size (exclusive). */
    readonly end: bigint,
    readonly paddr: bigint,
    readonly prot: IommuProt,
  ) {}
}

/** Parameters of a RangeDomain. */
interface RangeDomainParams {
  pgsizeBitmap: bigint;
  aperture: IovaRange;
  enforceCacheCoherency?: boolean;
}

/** An IommuDomain kept as extents; no hardware dirty tracking. */
export class ReferenceRangeDomain implements IommuDomain {
  readonly pgsizeBitmap: bigint;
  readonly aperture: IovaRange;
  readonly enforceCacheCoherency: boolean;
  private readonly extents = new IovaList<Extent>();

  constructor(p: RangeDomainParams) {
    this.pgsizeBitmap = p.pgsizeBitmap;
    this.minPageMask = (p.pgsizeBitmap & -p.pgsizeBitmap) - 1n;
    this.aperture = { ...p.aperture };
    this.apertureEnd = this.aperture.end + 1n;
    this.enforceCacheCoherency = p.enforceCacheCoherency ?? false;
  }

  /** Smallest page size - 1 and aperture.end + 1 (map() checks them on every call). */
  private readonly minPageMask: bigint;
  private readonly apertureEnd: bigint;

  /** Index of the first extent whose end is above `iova` (`key`: Number(iova)). */
  private lowerBound(iova: bigint, key?: number): number {
    return this.extents.firstEndAbove(iova, key);
  }

  map(iova: bigint, paddr: bigint, size: bigint, prot: IommuProt, iovaKey?: number): number {
    if (size <= 0n || ((iova | paddr | size) & this.minPageMask) !== 0n) return -Errno.EINVAL;
    const end = iova + size;
    if (iova < this.aperture.start || end > this.apertureEnd) return -Errno.EINVAL;
    const key = iovaKey ?? bigintToNumber(iova);
    const i = this.lowerBound(iova, key);
    const next = this.extents.at(i);
    if (next && next.iova < end) return -Errno.EEXIST;
    this.extents.insertAt(i, new Extent(iova, size, end, paddr, prot), key);
    return 0;
  }

  unmap(iova: bigint, size: bigint): bigint {
    let done = 0n;
    let pos = iova;
    const end = iova + size;
    while (pos < end) {
      const i = this.lowerBound(pos);
      const e = this.extents.at(i);
      if (!e || e.iova > pos) break;
      const eEnd = e.end;
      const stop = eEnd < end ? eEnd : end;
      const cut = stop - pos;
      // Split the extent into the parts before and after [pos, stop).
      this.extents.removeAt(i);
      if (stop < eEnd) this.extents.insertAt(i, new Extent(stop, eEnd - stop, eEnd, e.paddr + (stop - e.iova), e.prot));
      if (e.iova < pos) this.extents.insertAt(i, new Extent(e.iova, pos - e.iova, pos, e.paddr, e.prot));
      pos = stop;
      done += cut;
    }
    return done;
  }

  iovaToPhys(iova: bigint): bigint | null {
    const e = this.extents.at(this.lowerBound(iova));
    return e && e.iova <= iova ? e.paddr + (iova - e.iova) : null;
  }

  /** Number of extents (tests: no per-page state). */
  get extentCount(): number {
    return this.extents.length;
  }

  /** The mapped extents as [iova, size, paddr, prot] (tests and snapshots). */
  dump(): Array<[bigint, bigint, bigint, IommuProt]> {
    return this.extents.toArray().map((e) => [e.iova, e.size, e.paddr, e.prot]);
  }
}
