/**
 * An ordered list in chunks (at most 2 * CHUNK items each): insertion and removal anywhere
 * cost O(sqrt n) instead of an O(n) splice, so 65535-entry containers (dma_entry_limit) and
 * their UNMAP_ALL stay fast. Order is the caller's: it inserts at the index lowerBound() found.
 *
 * MAP_DMA looks items up several times per call, so lookups allocate nothing: the search
 * predicate takes its key as a second argument (a module-level function, no closure), and
 * the chunk index of the first item of each chunk is repaired in place from the first
 * chunk that changed, not rebuilt.
 */
const CHUNK = 256;

/** An item with an iova range [iova, end), for the written-out searches. */
export interface IovaExtent {
  readonly iova: bigint;
  readonly end: bigint;
}

/** A list of T ordered by the caller. */
export class ChunkedList<T> {
  private readonly chunks: T[][] = [];
  private count = 0;
  /** Index of the first item of each chunk; entries from `startsDirty` on are stale. */
  private readonly starts: number[] = [];
  private startsDirty = 0;
  /** locate()'s answer (two fields instead of a fresh pair per call). */
  private locChunk = 0;
  private locOffset = 0;
  /**
   * The index locChunk/locOffset stand for, or -1. The searches leave it at the index they
   * return, so the at()/insertAt() that follows a search (MAP_DMA does one of each per list)
   * does not search the chunk starts again. Every change to the list clears it.
   */
  private locIndex = -1;

  /** Number of items. */
  get length(): number {
    return this.count;
  }

  /** Marks the chunk starts after chunk `c` stale (its length or the chunks after it changed). */
  private changed(c: number): void {
    if (c + 1 < this.startsDirty) this.startsDirty = c + 1;
  }

  private chunkStarts(): number[] {
    const st = this.starts;
    const chunks = this.chunks;
    if (this.startsDirty < chunks.length || st.length !== chunks.length) {
      let c = this.startsDirty;
      if (c < 1) {
        c = 1;
        st[0] = 0;
      }
      for (; c < chunks.length; c++) st[c] = st[c - 1] + chunks[c - 1].length;
      st.length = chunks.length;
    }
    this.startsDirty = chunks.length;
    return st;
  }

  /** Sets locChunk/locOffset to the chunk and offset of index `i` (i < count), or [chunks.length, 0] past the end. */
  private locate(i: number): void {
    if (i === this.locIndex) return;
    this.locIndex = -1;
    if (i >= this.count) {
      this.locChunk = this.chunks.length;
      this.locOffset = 0;
      return;
    }
    const st = this.chunkStarts();
    let lo = 0;
    let hi = st.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (st[mid] <= i) lo = mid;
      else hi = mid - 1;
    }
    this.locChunk = lo;
    this.locOffset = i - st[lo];
    this.locIndex = i;
  }

  /** Records a search's answer (chunk `c`, offset `k`) as the located index, and returns it. */
  private found(c: number, k: number): number {
    const i = this.chunkStarts()[c] + k;
    this.locChunk = c;
    this.locOffset = k;
    this.locIndex = i;
    return i;
  }

  /** The item at index `i`, or undefined. */
  at(i: number): T | undefined {
    if (i < 0 || i >= this.count) return undefined;
    this.locate(i);
    return this.chunks[this.locChunk][this.locOffset];
  }

  /**
   * The first index whose item satisfies the monotone predicate `pred(item, key)`
   * (false...false true...true), or length. Binary search over the chunks' last items, then
   * inside one chunk: O(log n) calls of `pred`.
   */
  lowerBound<K>(pred: (v: T, key: K) => boolean, key: K): number;
  lowerBound(pred: (v: T) => boolean): number;
  lowerBound<K>(pred: (v: T, key: K | undefined) => boolean, key?: K): number {
    const chunks = this.chunks;
    let lo = 0;
    let hi = chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const ch = chunks[mid];
      if (pred(ch[ch.length - 1], key)) hi = mid;
      else lo = mid + 1;
    }
    if (lo === chunks.length) return this.count;
    const ch = chunks[lo];
    let a = 0;
    let b = ch.length - 1;
    while (a < b) {
      const mid = (a + b) >> 1;
      if (pred(ch[mid], key)) b = mid;
      else a = mid + 1;
    }
    return this.found(lo, a);
  }

  /**
   * lowerBound((v) => v.end > x) over items ordered by iova with disjoint [iova, end): the
   * first item ending above x. Written out rather than through a predicate: MAP_DMA and the
   * range domain search on every call, and a shared predicate call site does not inline.
   */
  firstEndAbove(this: ChunkedList<IovaExtent>, x: bigint): number {
    const chunks = this.chunks;
    let lo = 0;
    let hi = chunks.length - 1;
    // The last chunk first: an item past every other (a VMM mapping upwards) costs one
    // comparison, and otherwise the search below has one chunk less to look at.
    if (hi < 0 || !(chunks[hi][chunks[hi].length - 1].end > x)) return this.count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const ch = chunks[mid];
      if (ch[ch.length - 1].end > x) hi = mid;
      else lo = mid + 1;
    }
    const ch = chunks[lo];
    let a = 0;
    let b = ch.length - 1;
    while (a < b) {
      const mid = (a + b) >> 1;
      if (ch[mid].end > x) b = mid;
      else a = mid + 1;
    }
    return this.found(lo, a);
  }

  /** lowerBound((v) => v.iova >= x) over items ordered by iova, written out like firstEndAbove. */
  firstIovaAtOrAbove(this: ChunkedList<IovaExtent>, x: bigint): number {
    const chunks = this.chunks;
    let lo = 0;
    let hi = chunks.length - 1;
    if (hi < 0 || !(chunks[hi][chunks[hi].length - 1].iova >= x)) return this.count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const ch = chunks[mid];
      if (ch[ch.length - 1].iova >= x) hi = mid;
      else lo = mid + 1;
    }
    const ch = chunks[lo];
    let a = 0;
    let b = ch.length - 1;
    while (a < b) {
      const mid = (a + b) >> 1;
      if (ch[mid].iova >= x) b = mid;
      else a = mid + 1;
    }
    return this.found(lo, a);
  }

  /** Inserts `v` before index `i`. */
  insertAt(i: number, v: T): void {
    const chunks = this.chunks;
    if (chunks.length === 0) {
      chunks.push([v]);
      this.count = 1;
      this.locIndex = -1;
      this.changed(-1);
      return;
    }
    this.locate(i);
    let c = this.locChunk;
    let k = this.locOffset;
    if (c === chunks.length) {
      c--;
      k = chunks[c].length;
    }
    const ch = chunks[c];
    // Shifted by hand: splice() would return a new (empty) array on every call.
    ch.push(v);
    for (let j = ch.length - 1; j > k; j--) ch[j] = ch[j - 1];
    ch[k] = v;
    if (ch.length > 2 * CHUNK) chunks.splice(c + 1, 0, ch.splice(CHUNK));
    this.count++;
    this.locIndex = -1;
    this.changed(c);
  }

  /** Removes and returns the item at index `i`. */
  removeAt(i: number): T | undefined {
    if (i < 0 || i >= this.count) return undefined;
    this.locate(i);
    const c = this.locChunk;
    const k = this.locOffset;
    const ch = this.chunks[c];
    const v = ch[k];
    // Shifted by hand: splice() would return a new one-item array on every call.
    for (let j = k + 1; j < ch.length; j++) ch[j - 1] = ch[j];
    ch.pop();
    if (ch.length === 0) this.chunks.splice(c, 1);
    this.count--;
    this.locIndex = -1;
    this.changed(c - 1);
    return v;
  }

  /** Items in order. */
  *[Symbol.iterator](): IterableIterator<T> {
    for (const ch of this.chunks) yield* ch;
  }

  /** Items from index `i` on, in order (stable only while the list is not modified). */
  *from(i: number): IterableIterator<T> {
    this.locate(i);
    let k = this.locOffset;
    for (let c = this.locChunk; c < this.chunks.length; c++, k = 0) for (let j = k; j < this.chunks[c].length; j++) yield this.chunks[c][j];
  }

  /** The items at indices [i, j), in order (no generator: GET_BITMAP walks 64k dmas). */
  slice(i: number, j: number): T[] {
    j = Math.min(j, this.count);
    if (i >= j) return [];
    const out: T[] = new Array(j - i);
    this.locate(i);
    let k = this.locOffset;
    for (let c = this.locChunk, o = 0; o < out.length; c++, k = 0) {
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
