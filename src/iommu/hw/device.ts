/**
 * A simulated DMA-capable device behind an IOMMU domain. Each access is translated
 * through the domain's IOTLB when an entry is cached, and otherwise by the hardware walk
 * (which sets access/dirty bits and caches the translation).
 *
 * A write through a cached entry whose cached state is clean makes the hardware update
 * the PTE it came from: that update lands only if the PTE is still present and writable.
 * If the PTE was cleared (unmap before the flush) the write still completes through the
 * stale translation and its dirty bit is lost: the race of the 2022 RFC.
 */
import { PgtableDomain } from "./domain";

const PAGE = 4096;
/** Slots of the core's device-walk ring (assembly/pgtable/table.ts DEVICE_RING_SLOTS). */
const DEVICE_RING_SLOTS = 256;

/** Result of a DMA access. */
export const DMA_OK = 0;
/** No translation (IO page fault). */
export const DMA_FAULT_NOT_PRESENT = 1;
/** Permission fault (write to a read-only or write-protected mapping). */
export const DMA_FAULT_PERM = 2;

/** Counters. */
export interface DmaDeviceStats {
  reads: number;
  writes: number;
  faults: number;
  /** Writes that went through a stale translation whose dirty update found no PTE. */
  lostDirtyUpdates: number;
}

/** A device that issues DMA reads and writes by IOVA. */
export class DmaDevice {
  /** The domain the device is attached to (null: DMA is blocked). */
  domain: PgtableDomain | null = null;
  /** Access counters. */
  readonly stats: DmaDeviceStats = { reads: 0, writes: 0, faults: 0, lostDirtyUpdates: 0 };
  /**
   * Walk ranges that miss the IOTLB in one batch (same outcome as leaf by leaf, see
   * accessUncached). Tests turn it off to compare the two.
   */
  batchWalk = true;
  /** Called for every completed write piece with its physical address and length. */
  onWrite: ((phys: number, len: number) => void) | null = null;

  constructor(readonly name = "dma0") {}

  /** Attaches to a domain (a detached device faults every access). */
  attach(domain: PgtableDomain | null): void {
    this.domain = domain;
  }

  /** DMA write of `len` bytes at `iova`: DMA_OK or the first fault (earlier pieces completed). */
  write(iova: number, len = 1): number {
    return this.access(iova, len, true);
  }

  /** DMA read of `len` bytes at `iova`. */
  read(iova: number, len = 1): number {
    return this.access(iova, len, false);
  }

  private access(iova: number, len: number, write: boolean): number {
    const d = this.domain;
    if (!d || !(len > 0)) {
      if (!d) this.stats.faults++;
      return d ? DMA_OK : DMA_FAULT_NOT_PRESENT;
    }
    const end = iova + len;
    if (this.batchWalk && end - iova > 2 * PAGE && !d.iotlb.overlaps(iova, end - 1)) return this.accessUncached(d, iova, end, write);
    let p = iova;
    while (p < end) {
      const status = this.accessOne(d, p, write);
      if (status !== DMA_OK) {
        this.stats.faults++;
        return status;
      }
      const n = Math.min(end, this.outLeafEnd) - p;
      if (write) {
        this.stats.writes++;
        this.onWrite?.(this.outPhys, n);
      } else this.stats.reads++;
      p += n;
    }
    return DMA_OK;
  }

  /**
   * `access` for a range no cached translation overlaps, with the same outcome: every leaf
   * of the range misses the IOTLB (an entry cached by this access covers a leaf the access
   * has already passed), so each is walked in order, and of the translations cached on the
   * way only the last `capacity` survive the FIFO. Those are kept in a ring and inserted at
   * the end, oldest first; the others are never materialised (a device writing megabytes
   * costs a walk per leaf, not an object and two map updates).
   */
  private accessUncached(d: PgtableDomain, iova: number, end: number, write: boolean): number {
    const t = d.table;
    const x = t.core.x;
    const cap = d.iotlb.capacity;
    if (this.onWrite === null && cap >= 1 && cap <= DEVICE_RING_SLOTS) return this.accessUncachedWasm(d, iova, end, write);
    const ring = this.ring.length >= cap * 6 ? this.ring : (this.ring = new Float64Array(cap * 6));
    let walked = 0;
    let status = DMA_OK;
    for (let p = iova; p < end; ) {
      const s = t.deviceAccess(p, write);
      if (s !== DMA_OK) {
        status = s;
        break;
      }
      const leafIova = x.ptOutLeafIova(t.ptr);
      const size = x.ptOutLeafSize(t.ptr);
      const phys = x.ptOutPhys(t.ptr);
      const o = (walked % cap) * 6;
      ring[o] = leafIova;
      ring[o + 1] = size;
      ring[o + 2] = phys - (p - leafIova);
      ring[o + 3] = x.ptOutWritable(t.ptr);
      ring[o + 4] = x.ptOutNoUpdate(t.ptr);
      ring[o + 5] = x.ptOutPte(t.ptr);
      walked++;
      const n = Math.min(end, leafIova + size) - p;
      if (write) {
        this.stats.writes++;
        this.onWrite?.(phys, n);
      } else this.stats.reads++;
      p += n;
    }
    d.iotlb.countMisses(walked + (status === DMA_OK ? 0 : 1));
    for (let i = Math.max(0, walked - cap); i < walked; i++) {
      const o = (i % cap) * 6;
      d.iotlb.insertLeaf(ring[o], ring[o + 1], ring[o + 2], ring[o + 3] !== 0, ring[o + 4] !== 0, ring[o + 5], true);
    }
    if (status !== DMA_OK) this.stats.faults++;
    return status;
  }

  /**
   * accessUncached with the walk in one Wasm call (ptDeviceAccessRange): the same leaves
   * walked in the same order with the same A/D updates, the last `capacity` translations
   * left in the core's static ring. Only when nobody observes each write piece (onWrite).
   */
  private accessUncachedWasm(d: PgtableDomain, iova: number, end: number, write: boolean): number {
    const t = d.table;
    const core = t.core;
    const cap = d.iotlb.capacity;
    const r = core.x.ptDeviceAccessRange(t.ptr, iova, end, write ? 1 : 0, cap);
    const status = r % 4;
    const walked = (r - status) / 4;
    if (write) this.stats.writes += walked;
    else this.stats.reads += walked;
    d.iotlb.countMisses(walked + (status === DMA_OK ? 0 : 1));
    if (walked > 0) {
      const buf = core.u8.buffer;
      if (this.wasmRing.buffer !== buf) this.wasmRing = new Float64Array(buf, core.x.ptDeviceRing(), DEVICE_RING_SLOTS * 6);
      const ring = this.wasmRing;
      for (let i = Math.max(0, walked - cap); i < walked; i++) {
        const o = (i % cap) * 6;
        d.iotlb.insertLeaf(ring[o], ring[o + 1], ring[o + 2], ring[o + 3] !== 0, ring[o + 4] !== 0, ring[o + 5], true);
      }
    }
    if (status !== DMA_OK) this.stats.faults++;
    return status;
  }

  /** View of the core's static ring (rebuilt when linear memory grows). */
  private wasmRing: Float64Array<ArrayBufferLike> = new Float64Array(0);

  /** The last leaves an uncached access walked: (iova, size, phys, writable, noUpdate, pte) each. */
  private ring = new Float64Array(0);

  /** Where the last successful accessOne() landed (fields, not a result object per access). */
  private outPhys = 0;
  private outLeafEnd = 0;

  /** One access at `iova`: DMA_OK (then outPhys/outLeafEnd are set) or the fault. */
  private accessOne(d: PgtableDomain, iova: number, write: boolean): number {
    const e = d.iotlb.lookup(iova);
    if (e) {
      if (write) {
        if (!e.writable) return DMA_FAULT_PERM;
        if (!e.noUpdate) {
          const u = d.table.deviceDirtyUpdate(e.ptePtr);
          if (u === DMA_FAULT_PERM) return DMA_FAULT_PERM;
          if (u === DMA_FAULT_NOT_PRESENT) this.stats.lostDirtyUpdates++;
          else e.noUpdate = true;
        }
      }
      this.outPhys = e.phys + (iova - e.iova);
      this.outLeafEnd = e.iova + e.size;
      return DMA_OK;
    }
    const t = d.table;
    const x = t.core.x;
    const s = t.deviceAccess(iova, write);
    if (s !== DMA_OK) return s;
    const leafIova = x.ptOutLeafIova(t.ptr);
    const size = x.ptOutLeafSize(t.ptr);
    const phys = x.ptOutPhys(t.ptr);
    d.iotlb.insert({
      iova: leafIova,
      size,
      phys: phys - (iova - leafIova),
      writable: x.ptOutWritable(t.ptr) !== 0,
      noUpdate: x.ptOutNoUpdate(t.ptr) !== 0,
      ptePtr: x.ptOutPte(t.ptr),
    });
    this.outPhys = phys;
    this.outLeafEnd = leafIova + size;
    return DMA_OK;
  }
}
