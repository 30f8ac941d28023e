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
