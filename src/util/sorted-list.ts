/**
 * An ordered list in chunks (at most 2 * CHUNK items each): insertion and removal anywhere
 * cost O(sqrt n) instead of an O(n) splice, so 65535-entry containers (dma_entry_limit) and
 * their UNMAP_ALL stay fast. Order is the caller's: it inserts at the index lowerBound() found.
 *
 * MAP_DMA looks items up several times per call, so lookups allocate nothing: the search
 * predicate takes its key as a second argument (a module-level function, no closure), and
 * the index of the first item of each chunk is kept in a packed array that every change
 * adjusts (one ±1 per later chunk, no chunk touched).
 *
 * IovaList, the list of type1's dmas and of a range domain's extents, also keeps each item's
 * iova as a Number in a plain double array beside its chunk. A search then compares
 * doubles that sit next to each other instead of loading an object and its BigInt per probe
 * (at 64,000 mappings in random order that was a third of a MAP_DMA), and compares BigInts
 * only where the rounding of addresses at or above 2^53 leaves a tie.
 */
import { bigintToNumber } from "./u64";

const CHUNK = 256;

/** An item with an iova range [iova, end), for the written-out searches. */
export interface IovaExtent {
  readonly iova: bigint;
  readonly end: bigint;
}

/** A list of T ordered by the caller. */
export class ChunkedList<T> {
  protected readonly chunks: T[][] = [];
  /** With a key function: each item's key, chunk by chunk beside `chunks`. */
  protected readonly keys: number[][] | null;
  /**
   * With a key function: the key of each chunk's last item, in one packed array, so a
   * search picks its chunk without loading a key array per probe (a cache miss each, at
   * 64,000 items in random order).
   */
  protected readonly lastKeys: number[] = [];
  protected count = 0;
  /**
   * Index of the first item of each chunk, kept up to date on every change: a packed
   * integer array, so an insert or removal adds ±1 to the entries after its chunk without
   * touching a chunk (repairing them lazily read every later chunk's length, one cache miss
   * each, on the next search).
   */
  private readonly starts: number[] = [];
  /** locate()'s answer (two fields instead of a fresh pair per call). */
  private locChunk = 0;
  private locOffset = 0;
  /**
   * The index locChunk/locOffset stand for, or -1. The searches leave it at the index they
   * return, so the at()/insertAt() that follows a search (MAP_DMA does one of each per list)
   * does not search the chunk starts again. Every change to the list clears it.
   */
  private locIndex = -1;

  /** @param keyOf a Number key per item, kept beside it for subclasses' searches (computed once, on insert). */
  constructor(private readonly keyOf: ((v: T) => number) | null = null) {
    this.keys = keyOf ? [] : null;
  }

  /** Number of items. */
  get length(): number {
    return this.count;
  }

  /** Adds `d` to the start of every chunk after chunk `c`. */
  private shiftStarts(c: number, d: number): void {
    const st = this.starts;
    for (let j = c + 1; j < st.length; j++) st[j] += d;
  }

  /** Recomputes every chunk start and last key (after chunks were split or dropped). */
  private rebuildStarts(): void {
    const st = this.starts;
    const chunks = this.chunks;
    st.length = chunks.length;
    let n = 0;
    for (let c = 0; c < chunks.length; c++) {
      st[c] = n;
      n += chunks[c].length;
    }
    const keys = this.keys;
    if (keys) {
      const lk = this.lastKeys;
      lk.length = keys.length;
      for (let c = 0; c < keys.length; c++) lk[c] = keys[c][keys[c].length - 1];
    }
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
    const st = this.starts;
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
  protected found(c: number, k: number): number {
    const i = this.starts[c] + k;
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
   * Inserts `v` before index `i`. `key`: its key when the caller has it (what the key
   * function would return), so it is not computed again.
   */
  insertAt(i: number, v: T, key?: number): void {
    const chunks = this.chunks;
    const keys = this.keys;
    if (chunks.length === 0) {
      chunks.push([v]);
      if (keys) keys.push([key ?? this.keyOf!(v)]);
      this.count = 1;
      this.locIndex = -1;
      this.rebuildStarts();
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
    if (keys) {
      // Keys are doubles: splice moves them with a memmove, several times faster than a
      // loop, for a small result array of garbage.
      const kc = keys[c];
      const kv = key ?? this.keyOf!(v);
      if (k === kc.length) {
        kc.push(kv);
        this.lastKeys[c] = kv;
      } else {
        kc.splice(k, 0, kv);
      }
    }
    if (ch.length > 2 * CHUNK) {
      chunks.splice(c + 1, 0, ch.splice(CHUNK));
      if (keys) keys.splice(c + 1, 0, keys[c].splice(CHUNK));
      this.rebuildStarts();
    } else {
      this.shiftStarts(c, 1);
    }
    this.count++;
    this.locIndex = -1;
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
    const keys = this.keys;
    if (keys) {
      const kc = keys[c];
      if (k === kc.length - 1) {
        kc.pop();
        if (k > 0) this.lastKeys[c] = kc[k - 1];
      } else {
        kc.splice(k, 1);
      }
    }
    if (ch.length === 0) {
      this.chunks.splice(c, 1);
      if (keys) keys.splice(c, 1);
      this.rebuildStarts();
    } else {
      this.shiftStarts(c, -1);
    }
    this.count--;
    this.locIndex = -1;
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

/**
 * A ChunkedList of disjoint iova ranges ordered by iova (type1's dma list, a range domain's
 * extents), with the two searches MAP_DMA and UNMAP_DMA make on every call, written out
 * over the Number keys (an iova rounds to the nearest double, monotonically, so a key
 * below or above the searched one decides; only equal keys need the BigInts).
 */
export class IovaList<T extends IovaExtent> extends ChunkedList<T> {
  constructor() {
    super(iovaKey);
  }

  /**
   * Chunk and offset of the first item whose iova is at or above `x` (`strict`: above `x`),
   * left in foundChunk/foundOffset; false when there is none.
   */
  private firstIova(x: bigint, strict: boolean, xn: number): boolean {
    const keys = this.keys!;
    const n = keys.length;
    if (n === 0) return false;
    // xn is Number(x), which rounds to nearest for any BigInt (past 2^64 too: callers pass
    // last + 1), the same rounding as the keys, so the order of keys and xn is the order of
    // the BigInts except where they tie.
    // The last chunk first: an item past every other (a VMM mapping upwards) costs one
    // comparison, and otherwise the search below has one chunk less to look at.
    const lk = this.lastKeys;
    let hi = n - 1;
    if (lk[hi] < xn) return false;
    let lo = 0;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (lk[mid] >= xn) hi = mid;
      else lo = mid + 1;
    }
    let kc = keys[lo];
    let a = 0;
    let b = kc.length - 1;
    while (a < b) {
      const mid = (a + b) >> 1;
      if (kc[mid] >= xn) b = mid;
      else a = mid + 1;
    }
    // Equal keys may stand for iovas below (or, strict, at) x: step past those exactly.
    let c = lo;
    while (kc[a] === xn) {
      const v = this.chunks[c][a].iova;
      if (strict ? v > x : v >= x) break;
      if (++a === kc.length) {
        if (++c === n) return false;
        kc = keys[c];
        a = 0;
      }
    }
    this.foundChunk = c;
    this.foundOffset = a;
    return true;
  }

  /** firstIova()'s answer. */
  private foundChunk = 0;
  private foundOffset = 0;

  /**
   * lowerBound((v) => v.iova >= x): the first item at or above x. `xn` is Number(x), passed
   * by a caller that already has it (a conversion costs more than the search's compares).
   */
  firstIovaAtOrAbove(x: bigint, xn: number = bigintToNumber(x)): number {
    return this.firstIova(x, false, xn) ? this.found(this.foundChunk, this.foundOffset) : this.count;
  }

  /**
   * lowerBound((v) => v.end > x): the first item ending above x. Ranges are disjoint, so
   * that is the last item starting at or below x when it reaches past x, else the first
   * one starting above x. `xn` is Number(x), as for firstIovaAtOrAbove.
   */
  firstEndAbove(x: bigint, xn: number = bigintToNumber(x)): number {
    let c: number;
    let k: number;
    if (this.firstIova(x, true, xn)) {
      c = this.foundChunk;
      k = this.foundOffset;
    } else {
      c = this.chunks.length;
      k = 0;
    }
    // The item before (c, k).
    let pc = c;
    let pk = k - 1;
    if (pk < 0) {
      if (--pc < 0) return c === this.chunks.length ? this.count : this.found(c, k);
      pk = this.chunks[pc].length - 1;
    }
    if (this.chunks[pc][pk].end > x) return this.found(pc, pk);
    return c === this.chunks.length ? this.count : this.found(c, k);
  }
}

/** IovaList's key: the iova as the nearest Number, Number(iova) (computed once per insert). */
const iovaKey = (v: IovaExtent): number => bigintToNumber(v.iova);
