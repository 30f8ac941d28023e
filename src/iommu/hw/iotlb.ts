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

/** A slot of the cache, reused in place: no allocation per insert. */
interface Slot {
  iova: number;
  size: number;
  phys: number;
  writable: boolean;
  noUpdate: boolean;
  ptePtr: number;
  /** Insertion number (FIFO order); 0 = the slot is empty. */
  seq: number;
  readonly index: number;
}

/**
 * A per-domain translation cache of `capacity` slots. A device streaming through megabytes
 * inserts an entry per leaf, so an insert allocates nothing and costs O(1): slots are reused
 * in place, free ones kept on a stack, and the FIFO is a ring of (slot, insertion number)
 * whose stale positions (entries invalidated out of order) are skipped when the oldest is
 * evicted.
 */
export class Iotlb {
  private readonly slots: Slot[];
  /** Leaf sizes present and their entry counts, in the order each size appeared (lookup order). */
  private readonly sizes: number[] = [];
  private readonly sizeCounts: number[] = [];
  private readonly free: Int32Array;
  private nfree: number;
  /** The FIFO: slot index and insertion number per position, positions [head, tail) mod length. */
  private readonly ringSlot: Int32Array;
  private readonly ringSeq: Float64Array;
  private head = 0;
  private tail = 0;
  private seq = 0;
  private count = 0;
  /** Hit/miss/invalidate counters. */
  readonly stats: IotlbStats = { hits: 0, misses: 0, invalidatedEntries: 0, flushes: 0 };

  /** `capacity` entries at most; the oldest is evicted first. */
  constructor(readonly capacity = 64) {
    const n = Math.max(1, capacity);
    this.slots = Array.from({ length: n }, (_, index) => ({ iova: 0, size: 0, phys: 0, writable: false, noUpdate: false, ptePtr: 0, seq: 0, index }));
    this.free = new Int32Array(n);
    for (let i = 0; i < n; i++) this.free[i] = n - 1 - i;
    this.nfree = n;
    this.ringSlot = new Int32Array(2 * n);
    this.ringSeq = new Float64Array(2 * n);
  }

  /** Number of cached entries. */
  get size(): number {
    return this.count;
  }

  /** The slot holding the leaf that starts at `iova`, or null. */
  private find(iova: number): Slot | null {
    for (const e of this.slots) if (e.seq !== 0 && e.iova === iova) return e;
    return null;
  }

  /** The entry covering `iova`, if cached (the entry itself: writes may set its noUpdate). */
  lookup(iova: number): IotlbEntry | undefined {
    for (const size of this.sizes) {
      const e = this.find(iova - (iova % size));
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
    this.insertLeaf(e.iova, e.size, e.phys, e.writable, e.noUpdate, e.ptePtr);
  }

  /**
   * `insert` without an entry object. `fresh`: the caller knows no entry starts at `iova`
   * (nothing overlaps the leaf), so the replacement search is skipped.
   */
  insertLeaf(iova: number, size: number, phys: number, writable: boolean, noUpdate: boolean, ptePtr: number, fresh = false): void {
    if (!fresh) {
      const same = this.find(iova);
      if (same) this.drop(same);
    }
    while (this.count >= this.capacity) this.evictOldest();
    const len = this.ringSlot.length;
    if (this.tail - this.head >= len) this.compact();
    const e = this.slots[this.free[--this.nfree]];
    e.iova = iova;
    e.size = size;
    e.phys = phys;
    e.writable = writable;
    e.noUpdate = noUpdate;
    e.ptePtr = ptePtr;
    e.seq = ++this.seq;
    this.ringSlot[this.tail % len] = e.index;
    this.ringSeq[this.tail % len] = e.seq;
    this.tail++;
    this.count++;
    const k = this.sizes.indexOf(size);
    if (k >= 0) this.sizeCounts[k]++;
    else {
      this.sizes.push(size);
      this.sizeCounts.push(1);
    }
  }

  private evictOldest(): void {
    const len = this.ringSlot.length;
    while (this.head < this.tail) {
      const e = this.slots[this.ringSlot[this.head % len]];
      const seq = this.ringSeq[this.head % len];
      this.head++;
      if (e.seq === seq) {
        this.drop(e);
        return;
      }
    }
  }

  /** Rebuilds the ring from the live entries in insertion order (only after out-of-order drops). */
  private compact(): void {
    const live = this.slots.filter((e) => e.seq !== 0).sort((a, b) => a.seq - b.seq);
    this.head = 0;
    this.tail = live.length;
    live.forEach((e, i) => {
      this.ringSlot[i] = e.index;
      this.ringSeq[i] = e.seq;
    });
  }

  private drop(e: Slot): void {
    e.seq = 0;
    this.free[this.nfree++] = e.index;
    this.count--;
    const k = this.sizes.indexOf(e.size);
    if (--this.sizeCounts[k] === 0) {
      this.sizes.splice(k, 1);
      this.sizeCounts.splice(k, 1);
    }
  }

  /** Whether any cached entry overlaps [start, last] (inclusive). */
  overlaps(start: number, last: number): boolean {
    for (const e of this.slots) if (e.seq !== 0 && e.iova <= last && e.iova + e.size - 1 >= start) return true;
    return false;
  }

  /** Counts `n` lookups that missed without performing them (a batched walk's misses). */
  countMisses(n: number): void {
    this.stats.misses += n;
  }

  /** Invalidates every entry overlapping [start, last] (inclusive), as a range flush does. */
  invalidateRange(start: number, last: number): void {
    this.stats.flushes++;
    for (const e of this.slots) {
      if (e.seq !== 0 && e.iova <= last && e.iova + e.size - 1 >= start) {
        this.drop(e);
        this.stats.invalidatedEntries++;
      }
    }
  }

  /** Invalidates everything (domain-wide flush). */
  flushAll(): void {
    this.stats.flushes++;
    this.stats.invalidatedEntries += this.count;
    for (const e of this.slots) if (e.seq !== 0) this.drop(e);
    this.head = this.tail = 0;
  }

  /** Snapshot of the cached entries (oldest first), as copies. */
  list(): IotlbEntry[] {
    return this.slots
      .filter((e) => e.seq !== 0)
      .sort((a, b) => a.seq - b.seq)
      .map(({ iova, size, phys, writable, noUpdate, ptePtr }) => ({ iova, size, phys, writable, noUpdate, ptePtr }));
  }
}
