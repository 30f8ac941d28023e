/**
 * An ordered list in chunks (at most CHUNK items each): insertion and removal anywhere cost
 * O(sqrt n) instead of an O(n) splice, so 65535-entry containers (dma_entry_limit) and their
 * UNMAP_ALL stay fast. Order is the caller's: it inserts at the index lowerBound() found.
 */
const CHUNK = 256;

/** A list of T ordered by the caller. */
export class ChunkedList<T> {
  private chunks: T[][] = [];
  private count = 0;

  /** Number of items. */
  get length(): number {
    return this.count;
  }

  /** Index of the first item of each chunk; rebuilt after a change, when next needed. */
  private starts: number[] | null = [];

  private chunkStarts(): number[] {
    if (this.starts === null) {
      const st: number[] = new Array(this.chunks.length);
      let n = 0;
      for (let c = 0; c < this.chunks.length; c++) {
        st[c] = n;
        n += this.chunks[c].length;
      }
      this.starts = st;
    }
    return this.starts;
  }

  /** [chunk, offset] of index `i` (i < count), or [chunks.length, 0] past the end. */
  private locate(i: number): [number, number] {
    if (i >= this.count) return [this.chunks.length, 0];
    const st = this.chunkStarts();
    let lo = 0;
    let hi = st.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (st[mid] <= i) lo = mid;
      else hi = mid - 1;
    }
    return [lo, i - st[lo]];
  }

  /** The item at index `i`, or undefined. */
  at(i: number): T | undefined {
    if (i < 0 || i >= this.count) return undefined;
    const [c, k] = this.locate(i);
    return this.chunks[c][k];
  }

  /**
   * The first index whose item satisfies the monotone predicate `pred` (false...false
   * true...true), or length. Binary search over the chunks' last items, then inside one
   * chunk: O(log n) calls of `pred`.
   */
  lowerBound(pred: (v: T) => boolean): number {
    const chunks = this.chunks;
    let lo = 0;
    let hi = chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const ch = chunks[mid];
      if (pred(ch[ch.length - 1])) hi = mid;
      else lo = mid + 1;
    }
    if (lo === chunks.length) return this.count;
    const ch = chunks[lo];
    let a = 0;
    let b = ch.length - 1;
    while (a < b) {
      const mid = (a + b) >> 1;
      if (pred(ch[mid])) b = mid;
      else a = mid + 1;
    }
    return this.chunkStarts()[lo] + a;
  }

  /** Inserts `v` before index `i`. */
  insertAt(i: number, v: T): void {
    if (this.chunks.length === 0) {
      this.chunks.push([v]);
      this.count = 1;
      this.starts = null;
      return;
    }
    let [c, k] = this.locate(i);
    if (c === this.chunks.length) {
      c--;
      k = this.chunks[c].length;
    }
    const ch = this.chunks[c];
    ch.splice(k, 0, v);
    if (ch.length > 2 * CHUNK) this.chunks.splice(c + 1, 0, ch.splice(CHUNK));
    this.count++;
    this.starts = null;
  }

  /** Removes and returns the item at index `i`. */
  removeAt(i: number): T | undefined {
    if (i < 0 || i >= this.count) return undefined;
    const [c, k] = this.locate(i);
    const ch = this.chunks[c];
    const [v] = ch.splice(k, 1);
    if (ch.length === 0) this.chunks.splice(c, 1);
    this.count--;
    this.starts = null;
    return v;
  }

  /** Items in order. */
  *[Symbol.iterator](): IterableIterator<T> {
    for (const ch of this.chunks) yield* ch;
  }

  /** Items from index `i` on, in order (stable only while the list is not modified). */
  *from(i: number): IterableIterator<T> {
    let [c, k] = this.locate(i);
    for (; c < this.chunks.length; c++, k = 0) for (let j = k; j < this.chunks[c].length; j++) yield this.chunks[c][j];
  }

  /** The items at indices [i, j), in order (no generator: GET_BITMAP walks 64k dmas). */
  slice(i: number, j: number): T[] {
    j = Math.min(j, this.count);
    if (i >= j) return [];
    const out: T[] = new Array(j - i);
    let [c, k] = this.locate(i);
    for (let o = 0; o < out.length; c++, k = 0) {
      const ch = this.chunks[c];
      const end = Math.min(ch.length, k + out.length - o);
      for (let m = k; m < end; m++) out[o++] = ch[m];
    }
    return out;
  }

  /** A plain array copy. */
  toArray(): T[] {
    return this.chunks.flat();
  }
}
