/**
 * A domain without page tables: a sorted table of mapped extents. Cost is per map call
 * (type1 maps one extent per pinned run), never per page, so terabyte guests are cheap.
 */
import { Errno } from "../uapi/errno";
import { bigintToNumber, numberToU64, u64Hi, u64Lo } from "../util/u64";
import type { IommuDomain, IommuProt, IovaRange } from "./domain";
import { ExtentTable } from "./extent-table";

const TWO32 = 4294967296;
/** 2^53: Numbers below it are exact integers, and sums of two below it are exact or at least 2^53. */
const TWO53 = 9007199254740992;
const TWO64 = 1n << 64n;
const U64_MAX = TWO64 - 1n;

/** Parameters of a RangeDomain. */
export interface RangeDomainParams {
  pgsizeBitmap: bigint;
  aperture: IovaRange;
  enforceCacheCoherency?: boolean;
}

/**
 * An IommuDomain kept as extents; no hardware dirty tracking.
 *
 * map(), unmap() and iovaToPhys() compute in Numbers when every address involved is below
 * 2^53 (every address a VMM maps), which is exact there and allocates nothing, and in
 * BigInts otherwise; both paths give the same answers. A physical range must fit a u64
 * phys_addr_t: map() refuses paddr < 0 or paddr + size > 2^64 with -EINVAL.
 */
export class RangeDomain implements IommuDomain {
  readonly pgsizeBitmap: bigint;
  readonly aperture: IovaRange;
  readonly enforceCacheCoherency: boolean;
  private readonly extents: ExtentTable;

  /** @param chunkSize extents per chunk of the table (tests: a small one forces splits). */
  constructor(p: RangeDomainParams, chunkSize?: number) {
    this.pgsizeBitmap = p.pgsizeBitmap;
    this.minPageMask = (p.pgsizeBitmap & -p.pgsizeBitmap) - 1n;
    this.minPageMaskN = this.minPageMask >= 0n && this.minPageMask < 0x8000_0000n ? Number(this.minPageMask) : -1;
    this.aperture = { ...p.aperture };
    this.apertureEnd = this.aperture.end + 1n;
    this.apertureStartN = bigintToNumber(this.aperture.start);
    this.apertureEndN = bigintToNumber(this.apertureEnd);
    this.enforceCacheCoherency = p.enforceCacheCoherency ?? false;
    this.extents = new ExtentTable(chunkSize);
  }

  /** Smallest page size - 1 and aperture.end + 1 (map() checks them on every call). */
  private readonly minPageMask: bigint;
  private readonly apertureEnd: bigint;
  /**
   * minPageMask as a Number when it fits an int32 (`&` on Numbers below 2^53 is exact on
   * their low 32 bits, where the mask is), else -1. The aperture bounds as Numbers
   * (rounded at or above 2^53: compared with an exact Number below 2^53 they still decide
   * exactly, as rounding is monotone).
   */
  private readonly minPageMaskN: number;
  private readonly apertureStartN: number;
  private readonly apertureEndN: number;

  map(iova: bigint, paddr: bigint, size: bigint, prot: IommuProt, iovaKey?: number): number {
    const maskN = this.minPageMaskN;
    if (iovaKey !== undefined && maskN >= 0) {
      const sizeN = bigintToNumber(size);
      const paddrN = bigintToNumber(paddr);
      const endN = iovaKey + sizeN;
      // The sums are below 2^53 only if both terms are exact (a rounded term is at least 2^53).
      if (sizeN > 0 && iovaKey >= 0 && paddrN >= 0 && endN < TWO53 && paddrN + sizeN < TWO53) {
        if (((iovaKey | paddrN | sizeN) & maskN) !== 0) return -Errno.EINVAL;
        if (iovaKey < this.apertureStartN || endN > this.apertureEndN) return -Errno.EINVAL;
        const lastN = endN - 1;
        const t = this.extents;
        // Words as int32 (`| 0`; the hi words are below 2^21): no boxed argument.
        const iovaHi = (iovaKey / TWO32) | 0;
        const iovaLo = iovaKey | 0;
        const lastHi = (lastN / TWO32) | 0;
        const lastLo = lastN | 0;
        if (t.seek(iovaHi, iovaLo) && !t.iovaAbove(t.c, t.k, lastHi, lastLo)) return -Errno.EEXIST;
        t.insert(t.c, t.k, iovaHi, iovaLo, lastHi, lastLo, (paddrN / TWO32) | 0, paddrN | 0, prot);
        return 0;
      }
    }
    return this.mapBig(iova, paddr, size, prot);
  }

  /** map() in BigInts: any address, any mask. */
  private mapBig(iova: bigint, paddr: bigint, size: bigint, prot: IommuProt): number {
    if (size <= 0n || ((iova | paddr | size) & this.minPageMask) !== 0n) return -Errno.EINVAL;
    const end = iova + size;
    if (iova < this.aperture.start || end > this.apertureEnd) return -Errno.EINVAL;
    // Outside u64 (an aperture past it) or a physical range past 2^64: not addressable.
    if (iova < 0n || end > TWO64 || paddr < 0n || paddr + size > TWO64) return -Errno.EINVAL;
    const last = end - 1n;
    const t = this.extents;
    const lastHi = u64Hi(last);
    const lastLo = u64Lo(last);
    if (t.seek(u64Hi(iova), u64Lo(iova)) && !t.iovaAbove(t.c, t.k, lastHi, lastLo)) return -Errno.EEXIST;
    t.insert(t.c, t.k, u64Hi(iova), u64Lo(iova), lastHi, lastLo, u64Hi(paddr), u64Lo(paddr), prot);
    return 0;
  }

  unmap(iova: bigint, size: bigint): bigint {
    const iovaN = bigintToNumber(iova);
    const sizeN = bigintToNumber(size);
    const endN = iovaN + sizeN;
    if (!(iovaN >= 0 && sizeN > 0 && endN < TWO53)) return this.unmapBig(iova, size);
    // In Numbers: iova, size and the end are exact; an extent's iova and last are exact
    // where it matters (a rounded one is at least 2^53, beyond endN either way).
    const t = this.extents;
    const lastN = endN - 1;
    let pos = iovaN;
    let done = 0;
    while (pos < endN) {
      if (!t.seek((pos / TWO32) | 0, pos | 0)) break;
      const c = t.c;
      const k = t.k;
      t.read(c, k);
      const eIova = t.at[0];
      const eLast = t.at[1];
      if (eIova > pos) break;
      const keepRight = eLast > lastN;
      // Without a right part the extent's last is below lastN, so exact.
      const stop = keepRight ? endN : eLast + 1;
      const delta = stop - eIova;
      if (eIova < pos) {
        const left = pos - 1;
        if (keepRight) t.split(c, k, (left / TWO32) | 0, left | 0, (stop / TWO32) | 0, stop | 0, (delta / TWO32) | 0, delta | 0);
        else t.cutBack(c, k, (left / TWO32) | 0, left | 0);
      } else if (keepRight) {
        t.cutFront(c, k, (stop / TWO32) | 0, stop | 0, (delta / TWO32) | 0, delta | 0);
      } else {
        t.remove(c, k);
      }
      done += stop - pos;
      pos = stop;
    }
    // The usual answer, everything, is the caller's own BigInt: nothing to allocate.
    return done === sizeN ? size : done === 0 ? 0n : numberToU64(done);
  }

  /** unmap() in BigInts: any arguments (no extent lies below 0 or reaches past 2^64 - 1). */
  private unmapBig(iova: bigint, size: bigint): bigint {
    const t = this.extents;
    const end = iova + size;
    let pos = iova;
    let done = 0n;
    if (iova < 0n) return 0n;
    while (pos < end && pos <= U64_MAX) {
      if (!t.seek(u64Hi(pos), u64Lo(pos))) break;
      const c = t.c;
      const k = t.k;
      const eIova = t.iova(c, k);
      if (eIova > pos) break;
      const eEnd = t.last(c, k) + 1n;
      const stop = eEnd < end ? eEnd : end;
      const delta = stop - eIova;
      if (eIova < pos) {
        const left = pos - 1n;
        if (stop < eEnd) t.split(c, k, u64Hi(left), u64Lo(left), u64Hi(stop), u64Lo(stop), u64Hi(delta), u64Lo(delta));
        else t.cutBack(c, k, u64Hi(left), u64Lo(left));
      } else if (stop < eEnd) {
        t.cutFront(c, k, u64Hi(stop), u64Lo(stop), u64Hi(delta), u64Lo(delta));
      } else {
        t.remove(c, k);
      }
      done += stop - pos;
      pos = stop;
    }
    return done;
  }

  iovaToPhys(iova: bigint): bigint | null {
    if (iova < 0n || iova > U64_MAX) return null;
    const t = this.extents;
    const hi = u64Hi(iova);
    const lo = u64Lo(iova);
    if (!t.seek(hi, lo) || t.iovaAbove(t.c, t.k, hi, lo)) return null;
    const off = iova - t.iova(t.c, t.k);
    return t.physAt(t.c, t.k, u64Hi(off), u64Lo(off));
  }

  /** Number of extents (tests: no per-page state). */
  get extentCount(): number {
    return this.extents.length;
  }

  /** The mapped extents as [iova, size, paddr, prot] (tests and snapshots). */
  dump(): Array<[bigint, bigint, bigint, IommuProt]> {
    return this.extents.dump();
  }

  /** The table's invariants (tests): null, or the first broken one. */
  checkExtents(): string | null {
    return this.extents.check();
  }
}
