/**
 * The vdpa parent device behind vhost-vdpa, modelled on vdpa_sim's defaults: it has
 * `set_map` (receives the whole IOTLB of an address space and keeps its own copy, like
 * vdpasim_set_map), `bind_mm` (its DMA runs in the owner's mm, use_va), and DMA that
 * translates through its copy. The copy, not vhost's IOTLB, is what the device uses:
 * changes made inside a batch reach the device only at BATCH_END.
 */
import type { UserAccess } from "../process/file";
import { VhostIotlb, VhostIotlbMap } from "./iotlb";

/** One call the parent received through `set_map(vdpa, asid, iotlb)`. */
export interface SetMapCall {
  readonly asid: number;
  /** The IOTLB content passed, in tree order. */
  readonly entries: readonly { start: bigint; last: bigint; addr: bigint; perm: number }[];
}

/** The result of a device DMA: the value, or the IOVA that faulted. */
export type DmaResult<T> = { ok: true; value: T } | { ok: false; faultIova: bigint };

/** A vdpa_sim-like parent: set_map copies, bound mm, DMA. */
export class VdpaSimParent {
  /** Every set_map call received, oldest first (also the failed ones). */
  readonly setMapCalls: SetMapCall[] = [];
  private readonly copies = new Map<number, VhostIotlb>();
  private mm: UserAccess | null = null;

  /**
   * @param setMapHook failure injection: called before the copy is made; a negative
   *   return is set_map's error and the copy is left as it was.
   */
  constructor(private readonly setMapHook?: (call: SetMapCall) => number) {}

  /** set_map(asid, iotlb): log, then replace the copy with the IOTLB's entries in tree order. */
  setMap(asid: number, iotlb: VhostIotlb): number {
    const entries = iotlb.entries().map((m) => ({ start: m.start, last: m.last, addr: m.addr, perm: m.perm }));
    const call: SetMapCall = { asid, entries };
    this.setMapCalls.push(call);
    if (this.setMapHook !== undefined) {
      const r = this.setMapHook(call);
      if (r < 0) return r;
    }
    // vdpasim_set_map / vduse_domain_set_map: reset the copy, then add_range every entry
    // (with its opaque: VDUSE hands the file and offset to its daemon).
    const copy = new VhostIotlb(0, 0);
    for (const m of iotlb.entries()) copy.addRange(m.start, m.last, m.addr, m.perm, m.opaque);
    this.copies.set(asid, copy);
    return 0;
  }

  /** Forgets the copy of `asid` (the address space went away). */
  dropAddressSpace(asid: number): void {
    this.copies.delete(asid);
  }

  /** bind_mm / unbind_mm: whose memory the device's DMA reaches. */
  bindMm(mm: UserAccess | null): void {
    this.mm = mm;
  }

  /** The copy of `asid`'s IOTLB from the last successful set_map, in tree order. */
  entries(asid: number): VhostIotlbMap[] {
    return this.copies.get(asid)?.entries() ?? [];
  }

  /** The translation the device uses for `iova`, or null. */
  lookup(iova: bigint, asid: number): VhostIotlbMap | null {
    return this.copies.get(asid)?.first(iova, iova) ?? null;
  }

  /** The device reads `len` bytes at `iova` (needs read permission and readable memory). */
  dmaRead(iova: bigint, len: number, asid: number): DmaResult<Uint8Array> {
    if (!Number.isSafeInteger(len) || len < 0) return { ok: false, faultIova: iova };
    const out = new Uint8Array(len);
    const r = this.walk(iova, len, asid, 0x1, (mm, uaddr, off, n) => {
      const got = mm.copyFromUser(uaddr, n);
      if (got === null) return false;
      out.set(got, off);
      return true;
    });
    return r === null ? { ok: true, value: out } : { ok: false, faultIova: r };
  }

  /** The device writes `data` at `iova` (needs write permission and writable memory). */
  dmaWrite(iova: bigint, data: Uint8Array, asid: number): DmaResult<null> {
    const r = this.walk(iova, data.length, asid, 0x2, (mm, uaddr, off, n) => {
      return mm.copyToUser(uaddr, data.subarray(off, off + n)) === 0;
    });
    return r === null ? { ok: true, value: null } : { ok: false, faultIova: r };
  }

  /** Walks [iova, iova+len) entry by entry; returns the faulting IOVA or null. */
  private walk(
    iova: bigint,
    len: number,
    asid: number,
    need: number,
    access: (mm: UserAccess, uaddr: bigint, off: number, n: number) => boolean,
  ): bigint | null {
    const tlb = this.copies.get(asid);
    let off = 0;
    while (off < len) {
      const cur = BigInt.asUintN(64, iova + BigInt(off));
      const m = tlb?.first(cur, cur) ?? null;
      if (m === null || (m.perm & need) === 0 || this.mm === null) return cur;
      const avail = m.last - cur + 1n;
      const n = avail < BigInt(len - off) ? Number(avail) : len - off;
      const uaddr = BigInt.asUintN(64, m.addr + (cur - m.start));
      if (!access(this.mm, uaddr, off, n)) return cur;
      off += n;
    }
    return null;
  }
}
