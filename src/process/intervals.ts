/**
 * A set of page numbers kept as sorted disjoint [start, end) intervals: which pages of an
 * mm hold a real page (were written) rather than the shared zero page. Cost is per
 * interval, never per page.
 */
export class IntervalSet {
  private starts: number[] = [];
  private ends: number[] = [];

  /** Index of the first interval with end > x. */
  private find(x: number): number {
    let lo = 0;
    let hi = this.ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ends[mid] > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Adds [s, e). */
  add(s: number, e: number): void {
    if (e <= s) return;
    // Already inside one interval (re-faulting written pages): nothing to merge.
    const k = this.find(s);
    if (k < this.starts.length && this.starts[k] <= s && this.ends[k] >= e) return;
    // Merge with every interval that overlaps or touches [s, e].
    let i = this.find(s - 1);
    if (i > 0 && this.ends[i - 1] === s) i--;
    let j = i;
    let ns = s;
    let ne = e;
    while (j < this.starts.length && this.starts[j] <= e) {
      ns = Math.min(ns, this.starts[j]);
      ne = Math.max(ne, this.ends[j]);
      j++;
    }
    if (j - i === 1) {
      // Growing one interval (faulting the pages next to written ones): no splice, whose
      // result array would be garbage on every MAP_DMA that pins fresh pages.
      this.starts[i] = ns;
      this.ends[i] = ne;
      return;
    }
    this.starts.splice(i, j - i, ns);
    this.ends.splice(i, j - i, ne);
  }

  /** Removes [s, e). */
  remove(s: number, e: number): void {
    if (e <= s) return;
    const i = this.find(s);
    let j = i;
    const ns: number[] = [];
    const ne: number[] = [];
    while (j < this.starts.length && this.starts[j] < e) {
      if (this.starts[j] < s) {
        ns.push(this.starts[j]);
        ne.push(s);
      }
      if (this.ends[j] > e) {
        ns.push(e);
        ne.push(this.ends[j]);
      }
      j++;
    }
    this.starts.splice(i, j - i, ...ns);
    this.ends.splice(i, j - i, ...ne);
  }

  /** Whether x is in the set, and how far (exclusive end) that state lasts, capped at `limit`. */
  extent(x: number, limit: number): { inSet: boolean; end: number } {
    const end = this.extentEnd(x, limit);
    return { inSet: this.extentInSet, end };
  }

  /** extent() without its result object: returns the end and leaves inSet in `extentInSet`. */
  extentEnd(x: number, limit: number): number {
    const i = this.find(x);
    this.extentInSet = i < this.starts.length && this.starts[i] <= x;
    if (this.extentInSet) return Math.min(limit, this.ends[i]);
    return Math.min(limit, i < this.starts.length ? this.starts[i] : limit);
  }

  /**
   * With x in the set: where its interval starts, at least `limit`; with x not in it: x.
   * (The downward counterpart of extentEnd() for members.)
   */
  memberStart(x: number, limit: number): number {
    const i = this.find(x);
    return i < this.starts.length && this.starts[i] <= x ? Math.max(limit, this.starts[i]) : x;
  }

  /** extentEnd()'s other answer: whether x was in the set. */
  extentInSet = false;

  /** Whether x is in the set (extent() without its result object). */
  has(x: number): boolean {
    const i = this.find(x);
    return i < this.starts.length && this.starts[i] <= x;
  }

  /** Number of intervals. */
  get size(): number {
    return this.starts.length;
  }
}
