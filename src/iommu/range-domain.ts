/**
 * A domain without page tables: a sorted list of mapped extents. Cost is per map call
 * (type1 maps one extent per pinned run), never per page, so terabyte guests are cheap.
 */
import { Errno } from "../uapi/errno";
import { ChunkedList } from "../util/sorted-list";
import type { IommuDomain, IommuProt, IovaRange } from "./domain";

interface Extent {
  iova: bigint;
  size: bigint;
  paddr: bigint;
  prot: IommuProt;
}

/** Parameters of a RangeDomain. */
export interface RangeDomainParams {
  pgsizeBitmap: bigint;
  aperture: IovaRange;
  enforceCacheCoherency?: boolean;
}

/** An IommuDomain kept as extents; no hardware dirty tracking. */
export class RangeDomain implements IommuDomain {
  readonly pgsizeBitmap: bigint;
  readonly aperture: IovaRange;
  readonly enforceCacheCoherency: boolean;
  private readonly extents = new ChunkedList<Extent>();

  constructor(p: RangeDomainParams) {
    this.pgsizeBitmap = p.pgsizeBitmap;
    this.minPageSize = p.pgsizeBitmap & -p.pgsizeBitmap;
    this.aperture = { ...p.aperture };
    this.enforceCacheCoherency = p.enforceCacheCoherency ?? false;
  }

  private get minPage(): bigint {
    return this.minPageSize;
  }

  private readonly minPageSize: bigint;

  /** Index of the first extent whose end is above `iova`. */
  private lowerBound(iova: bigint): number {
    // e.iova > iova first: the sum (a new BigInt) is needed only for extents below iova.
    return this.extents.lowerBound((e) => e.iova > iova || e.iova + e.size > iova);
  }

  map(iova: bigint, paddr: bigint, size: bigint, prot: IommuProt): number {
    const m = this.minPage - 1n;
    if (size <= 0n || ((iova | paddr | size) & m) !== 0n) return -Errno.EINVAL;
    if (iova < this.aperture.start || iova + size - 1n > this.aperture.end) return -Errno.EINVAL;
    const i = this.lowerBound(iova);
    const next = this.extents.at(i);
    if (next && next.iova < iova + size) return -Errno.EEXIST;
    this.extents.insertAt(i, { iova, size, paddr, prot });
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
      const cut = (e.iova + e.size < end ? e.iova + e.size : end) - pos;
      // Split the extent into the parts before and after [pos, pos + cut).
      const pieces: Extent[] = [];
      if (e.iova < pos) pieces.push({ iova: e.iova, size: pos - e.iova, paddr: e.paddr, prot: e.prot });
      if (pos + cut < e.iova + e.size)
        pieces.push({ iova: pos + cut, size: e.iova + e.size - pos - cut, paddr: e.paddr + (pos + cut - e.iova), prot: e.prot });
      this.extents.removeAt(i);
      for (let k = pieces.length - 1; k >= 0; k--) this.extents.insertAt(i, pieces[k]);
      pos += cut;
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
