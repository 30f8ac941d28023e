/**
 * A plain TypeScript reference for the Wasm page tables: a Map from 4 KiB page to the
 * leaf that maps it, with the driver semantics written out naively (no tables, no bits).
 * Independent of the Wasm code: it only shares the Linux rules it is meant to check.
 */
import { PtFormat } from "../../src/iommu/pgtable";

export interface RefLeaf {
  iova: number;
  size: number;
  pa: number;
  writable: boolean;
  dirty: boolean;
}

const G = 4096;

/** iommu_pgsize(): largest size in the bitmap that fits `size` and the alignment of iova|pa. */
export function refPgsize(bitmap: number, iova: number, pa: number, size: number): number {
  let best = 0;
  for (let b = 12; b < 53; b++) {
    const s = 2 ** b;
    if (Math.floor(bitmap / s) % 2 !== 1) continue;
    if (s > size) break;
    if (iova % s !== 0 || pa % s !== 0) continue;
    best = s;
  }
  return best;
}

export class RefTable {
  readonly pages = new Map<number, RefLeaf>();
  readonly leaves = new Map<number, RefLeaf>();
  tracking = false;

  constructor(readonly format: PtFormat, readonly pgsizes: number, readonly levels: () => number, readonly hd: boolean) {}

  leafAt(iova: number): RefLeaf | undefined {
    return this.pages.get(Math.floor(iova / G));
  }

  map(iova: number, pa: number, size: number, writable: boolean): number {
    if (iova % G || pa % G || size % G) return -22;
    for (let p = iova; p < iova + size; p += G) if (this.pages.has(p / G)) return -17;
    let i = iova;
    let a = pa;
    let left = size;
    while (left > 0) {
      const s = refPgsize(this.pgsizes, i, a, left);
      const leaf: RefLeaf = { iova: i, size: s, pa: a, writable, dirty: writable && this.format === "arm-lpae-s1" && this.hd };
      this.leaves.set(i, leaf);
      for (let p = i; p < i + s; p += G) this.pages.set(p / G, leaf);
      i += s;
      a += s;
      left -= s;
    }
    return 0;
  }

  private drop(leaf: RefLeaf): void {
    this.leaves.delete(leaf.iova);
    for (let p = leaf.iova; p < leaf.iova + leaf.size; p += G) this.pages.delete(p / G);
  }

  /** Whole leaves from iova until size bytes or a hole; optionally collecting dirty records. */
  unmap(iova: number, size: number, rec?: (iova: number, len: number) => void): number {
    if (iova % G || size % G || size === 0) return 0;
    let unmapped = 0;
    while (unmapped < size) {
      const l = this.leafAt(iova);
      if (!l) break;
      if (rec && l.dirty) rec(iova, l.size);
      this.drop(l);
      iova = l.iova + l.size;
      unmapped += l.size;
    }
    return unmapped;
  }

  iovaToPhys(iova: number): number {
    const l = this.leafAt(iova);
    return l ? l.pa + (iova - l.iova) : -1;
  }

  /** DMA write through the page table (no IOTLB): 0 ok, 1 not present, 2 read-only. */
  write(iova: number): number {
    const l = this.leafAt(iova);
    if (!l) return 1;
    if (!l.writable) return 2;
    if (this.format === "arm-lpae-s1" ? this.hd : this.tracking) l.dirty = true;
    return 0;
  }

  private sorted: RefLeaf[] | null = null;

  /** Any leaf overlapping [a, b)? (binary search over the leaves sorted by IOVA) */
  private anyIn(a: number, b: number): boolean {
    if (!this.sorted) this.sorted = [...this.leaves.values()].sort((x, y) => x.iova - y.iova);
    const s = this.sorted;
    let lo = 0;
    let hi = s.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (s[mid].iova + s[mid].size <= a) lo = mid + 1;
      else hi = mid;
    }
    return lo < s.length && s[lo].iova < b;
  }

  /** Span the Gen A walker skips at a hole: the empty entry at the highest level that is empty. */
  holeSpan(iova: number): number {
    const levels = this.levels();
    for (let L = levels - 1; L >= 0; L--) {
      const span = 2 ** (12 + 9 * L);
      const start = iova - (iova % span);
      if (!this.anyIn(start, start + span)) return span;
    }
    return G;
  }

  /**
   * read_and_clear_dirty, Gen A loop: record (walk position, leaf size) for dirty leaves,
   * step by leaf size; holes: skip the empty entry's span (AMD/Intel) or fail (ARM).
   */
  readDirty(iova: number, size: number, noClear: boolean, rec: (iova: number, len: number) => void): number {
    const end = iova + size;
    this.sorted = null;
    if (size === 0) return this.format === "arm-lpae-s1" ? -22 : 0;
    while (iova < end) {
      const l = this.leafAt(iova);
      if (!l) {
        if (this.format === "arm-lpae-s1") return -22;
        iova += this.holeSpan(iova);
        continue;
      }
      if (l.dirty) {
        rec(iova, l.size);
        if (!noClear) l.dirty = false;
      }
      iova += l.size;
    }
    return 0;
  }

  /** Table pages a pruned tree must hold: root + one per non-empty entry span below it. */
  expectedTables(): number {
    const levels = this.levels();
    let n = 1;
    for (let L = 1; L < levels; L++) {
      const span = 2 ** (12 + 9 * L);
      const spans = new Set<number>();
      for (const l of this.leaves.values()) {
        if (l.size >= span) continue; // leaf at or above this level: no table below
        spans.add(Math.floor(l.iova / span));
      }
      n += spans.size;
    }
    return n;
  }
}

/** Sets bits for a record into a reference bitmap, like iova_bitmap_set clipped to nbits. */
export function refRecord(bits: Uint8Array, nbits: number, base: number, pageSize: number, iova: number, len: number): void {
  const first = Math.floor((iova - base) / pageSize);
  const last = Math.min(Math.floor((iova + len - 1 - base) / pageSize), nbits - 1);
  for (let b = Math.max(0, first); b <= last; b++) bits[b >> 3] |= 1 << (b & 7);
}
