/**
 * The per-domain IOTLB: a small FIFO cache of leaf translations, as a device-side IOMMU
 * keeps them. An entry remembers the PTE it was walked from and whether writes through it
 * may skip the hardware's dirty update (the PTE was already dirty when cached); that cached
 * state is what makes the unmap/IOTLB race possible until the entry is invalidated.
 */

/** One cached translation. */
export interface IotlbEntry {
  /** IOVA where the leaf starts. */
  readonly iova: number;
  /** Leaf size in bytes. */
  readonly size: number;
  /** Physical address of the leaf start. */
  readonly phys: number;
  /** Write permission as cached. */
  readonly writable: boolean;
  /** Writes need no PTE update (already dirty, or the hardware would not update). */
  noUpdate: boolean;
  /** Linear-memory address of the PTE the translation came from. */
  readonly ptePtr: number;
}

/** Counters for tests and tools. */
export interface IotlbStats {
  hits: number;
  misses: number;
  invalidatedEntries: number;
  flushes: number;
}

/** A per-domain translation cache. */
export class Iotlb {
  private readonly entries = new Map<number, IotlbEntry>();
  private readonly sizes = new Map<number, number>();
  /** Hit/miss/invalidate counters. */
  readonly stats: IotlbStats = { hits: 0, misses: 0, invalidatedEntries: 0, flushes: 0 };

  /** `capacity` entries at most; the oldest is evicted first. */
  constructor(readonly capacity = 64) {}

  /** Number of cached entries. */
  get size(): number {
    return this.entries.size;
  }

  /** The entry covering `iova`, if cached. */
  lookup(iova: number): IotlbEntry | undefined {
    for (const size of this.sizes.keys()) {
      const e = this.entries.get(iova - (iova % size));
      if (e && e.size === size) {
        this.stats.hits++;
        return e;
      }
    }
    this.stats.misses++;
    return undefined;
  }

  /** Caches a translation (replacing one for the same leaf). */
  insert(e: IotlbEntry): void {
    this.remove(e.iova);
    while (this.entries.size >= this.capacity) {
      const oldest = this.entries.keys().next().value as number;
      this.remove(oldest);
    }
    this.entries.set(e.iova, e);
    this.sizes.set(e.size, (this.sizes.get(e.size) ?? 0) + 1);
  }

  private remove(key: number): boolean {
    const e = this.entries.get(key);
    if (!e) return false;
    this.entries.delete(key);
    const n = (this.sizes.get(e.size) ?? 1) - 1;
    if (n === 0) this.sizes.delete(e.size);
    else this.sizes.set(e.size, n);
    return true;
  }

  /** Invalidates every entry overlapping [start, last] (inclusive), as a range flush does. */
  invalidateRange(start: number, last: number): void {
    this.stats.flushes++;
    for (const [k, e] of [...this.entries]) {
      if (e.iova <= last && e.iova + e.size - 1 >= start) {
        this.remove(k);
        this.stats.invalidatedEntries++;
      }
    }
  }

  /** Invalidates everything (domain-wide flush). */
  flushAll(): void {
    this.stats.flushes++;
    this.stats.invalidatedEntries += this.entries.size;
    this.entries.clear();
    this.sizes.clear();
  }

  /** Snapshot of the cached entries (oldest first). */
  list(): IotlbEntry[] {
    return [...this.entries.values()];
  }
}
