/**
 * The storage of a range domain's extents (src/iommu/range-domain.ts): disjoint u64
 * ranges [iova, last] with a paddr and a prot each, ordered by iova, as a chunked
 * struct-of-arrays table. It owns the layout, the order and the searches; the domain
 * owns the checks and the unmap walk.
 *
 * Why not a list of objects: every type1 MAP_DMA adds an extent to each domain, and an
 * object with BigInt fields per extent was about 150 bytes allocated per MAP_DMA, plus the
 * pointer chasing of its searches. Here an extent is six u32 words (iova, last and paddr as
 * hi/lo pairs) in its chunk's Uint32Array, a prot in an Int32Array (the kernel's `int
 * prot`), and Number(last) in a Float64Array: the search key. Inserting and removing move
 * each array's tail with copyWithin (a memmove); nothing is allocated except when a chunk
 * splits or grows.
 *
 * The key is the last byte, not the iova, because every question the domain asks
 * (MAP_DMA's overlap check, UNMAP_DMA's walk, iova_to_phys) is "the first extent whose last
 * byte is at or above x". Number() rounds monotonically, so a key below or above Number(x)
 * decides; keys only tie with distinct values at or above 2^53, where the exact words
 * decide. Each chunk's last key also sits in one packed array (lastKeys), so a search picks
 * its chunk without touching the chunks, and an extent above all others (a VMM mapping
 * upwards) is found after one comparison.
 *
 * Addresses cross the interface as u32 words (hi, lo), in either int32 or uint32 form, and
 * keys are computed here: a double passed to or returned from a call that the optimizing
 * compiler does not inline is boxed, one heap object per call.
 */
import { wordsToU64 } from "../util/u64";

/** Extents per chunk by default: a memmove of a chunk's tail stays a few KiB. */
export const EXTENT_CHUNK = 256;
/** Capacity of a table's first chunk (it doubles up to the chunk size, so small domains stay small). */
const FIRST_CAP = 8;
/** Empty chunks a table keeps for reuse. */
const SPARES = 4;
/** Words per extent in a chunk's `w`, and their offsets. */
const W = 6;
const IOVA_HI = 0;
const IOVA_LO = 1;
const LAST_HI = 2;
const LAST_LO = 3;
const PADDR_HI = 4;
const PADDR_LO = 5;
const TWO32 = 4294967296;
/** 2^53: keys below it are exact. */
const TWO53 = 9007199254740992;

/**
 * One chunk: `n` extents at indices [s, s + n) of its arrays. The free room is on both
 * sides, so an insert or removal moves the shorter part of the chunk: at either end it
 * moves nothing (UNMAP_DMA of a range removes its extents from the front).
 */
class ExtentChunk {
  s = 0;
  n = 0;
  w: Uint32Array;
  prot: Int32Array;
  keys: Float64Array;

  constructor(cap: number) {
    this.w = new Uint32Array(cap * W);
    this.prot = new Int32Array(cap);
    this.keys = new Float64Array(cap);
  }

  /** Reallocates with room for `cap` extents, the n extents moved to the front. */
  grow(cap: number): void {
    const s = this.s;
    const e = s + this.n;
    const w = new Uint32Array(cap * W);
    w.set(this.w.subarray(s * W, e * W));
    const prot = new Int32Array(cap);
    prot.set(this.prot.subarray(s, e));
    const keys = new Float64Array(cap);
    keys.set(this.keys.subarray(s, e));
    this.w = w;
    this.prot = prot;
    this.keys = keys;
    this.s = 0;
  }

  /** Moves the extents at indices [from, end) to index `to` (a memmove per array). */
  move(to: number, from: number, end: number): void {
    this.w.copyWithin(to * W, from * W, end * W);
    this.prot.copyWithin(to, from, end);
    this.keys.copyWithin(to, from, end);
  }
}

/**
 * Disjoint u64 extents ordered by iova. Positions are (chunk, offset) pairs, as seek()
 * leaves them in `c` and `k`; every change may move extents, so a position is good until
 * the next change.
 */
export class ExtentTable {
  private readonly chunks: ExtentChunk[] = [];
  /** The key of each chunk's last extent, chunk by chunk. */
  private readonly lastKeys: number[] = [];
  /**
   * Full-size chunks dropped when they emptied, up to SPARES, reused by the next splits or
   * appends: a domain that maps a batch above the rest and unmaps it again would otherwise
   * allocate a chunk per CHUNK extents of every batch.
   */
  private readonly spares: ExtentChunk[] = [];
  private count = 0;
  /** seek()'s answer: chunk index and offset. */
  c = 0;
  k = 0;
  /** read()'s answer: [Number(iova), Number(last)] of an extent (rounded at or above 2^53). */
  readonly at = new Float64Array(2);

  /** @param chunkSize extents per chunk at most (tests pass a small one to force splits). */
  constructor(chunkSize: number = EXTENT_CHUNK) {
    this.chunkSize = Math.max(2, Math.floor(chunkSize) || 0);
  }

  private readonly chunkSize: number;

  /** Number of extents. */
  get length(): number {
    return this.count;
  }

  /** Number of chunks (tests: splits and drops happen). */
  get chunkCount(): number {
    return this.chunks.length;
  }

  /**
   * Moves (c, k) to the first extent whose last byte is at or above x = (xHi, xLo), and
   * returns true; or, when there is none, to the end (where an extent above all others
   * goes) and returns false.
   */
  seek(xHi: number, xLo: number): boolean {
    xHi >>>= 0;
    xLo >>>= 0;
    // Number(x): hi * 2^32 is exact and the sum rounds once, as Number() does.
    const xn = xHi * TWO32 + xLo;
    const chunks = this.chunks;
    const n = chunks.length;
    const lk = this.lastKeys;
    if (n === 0 || lk[n - 1] < xn) {
      this.toEnd();
      return false;
    }
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (lk[mid] >= xn) hi = mid;
      else lo = mid + 1;
    }
    let ch = chunks[lo];
    let keys = ch.keys;
    // Indices into the chunk's arrays here, not offsets from its start.
    let a = ch.s;
    let b = a + ch.n - 1;
    while (a < b) {
      const mid = (a + b) >> 1;
      if (keys[mid] >= xn) b = mid;
      else a = mid + 1;
    }
    if (keys[a] === xn && xn >= TWO53) {
      // A key equal to a rounded xn may stand for a last below x: step past those exactly.
      while (keys[a] === xn && lastBelow(ch.w, a, xHi, xLo)) {
        if (++a === ch.s + ch.n) {
          if (++lo === n) {
            this.toEnd();
            return false;
          }
          ch = chunks[lo];
          keys = ch.keys;
          a = ch.s;
        }
      }
    }
    this.c = lo;
    this.k = a - ch.s;
    return true;
  }

  /** (c, k) past the last extent. */
  private toEnd(): void {
    const n = this.chunks.length;
    this.c = n === 0 ? 0 : n - 1;
    this.k = n === 0 ? 0 : this.chunks[n - 1].n;
  }

  /** Leaves Number(iova) and Number(last) of the extent at (c, k) in `at`. */
  read(c: number, k: number): void {
    const ch = this.chunks[c];
    const i = (ch.s + k) * W;
    this.at[0] = ch.w[i + IOVA_HI] * TWO32 + ch.w[i + IOVA_LO];
    this.at[1] = ch.keys[ch.s + k];
  }

  /** Whether the iova of the extent at (c, k) is above (hi, lo). */
  iovaAbove(c: number, k: number, hi: number, lo: number): boolean {
    hi >>>= 0;
    lo >>>= 0;
    const ch = this.chunks[c];
    const i = (ch.s + k) * W;
    const h = ch.w[i + IOVA_HI];
    return h > hi || (h === hi && ch.w[i + IOVA_LO] > lo);
  }

  /** The iova of the extent at (c, k). */
  iova(c: number, k: number): bigint {
    const ch = this.chunks[c];
    const i = (ch.s + k) * W;
    return wordsToU64(ch.w[i + IOVA_HI], ch.w[i + IOVA_LO]);
  }

  /** The last byte of the extent at (c, k). */
  last(c: number, k: number): bigint {
    const ch = this.chunks[c];
    const i = (ch.s + k) * W;
    return wordsToU64(ch.w[i + LAST_HI], ch.w[i + LAST_LO]);
  }

  /** The paddr of the extent at (c, k) plus (offHi, offLo) (which stays inside the extent, so no carry out). */
  physAt(c: number, k: number, offHi: number, offLo: number): bigint {
    const ch = this.chunks[c];
    const i = (ch.s + k) * W;
    const lo = ch.w[i + PADDR_LO] + (offLo >>> 0);
    return wordsToU64((ch.w[i + PADDR_HI] + offHi + (lo >= TWO32 ? 1 : 0)) >>> 0, lo >>> 0);
  }

  /**
   * Inserts an extent at (c, k) (before the extent there, or at the end of chunk c). The
   * caller keeps the order: it inserts where seek() left it, or next to an extent it splits.
   */
  insert(c: number, k: number, iovaHi: number, iovaLo: number, lastHi: number, lastLo: number, paddrHi: number, paddrLo: number, prot: number): void {
    const key = (lastHi >>> 0) * TWO32 + (lastLo >>> 0);
    const chunks = this.chunks;
    if (chunks.length === 0) {
      chunks.push(this.spares.pop() ?? new ExtentChunk(Math.min(FIRST_CAP, this.chunkSize)));
      this.lastKeys.push(key);
      c = 0;
      k = 0;
    }
    let ch = chunks[c];
    const max = this.chunkSize;
    if (ch.n === ch.keys.length) {
      if (ch.n < max) {
        ch.grow(Math.min(2 * ch.n, max));
      } else if (k === ch.n && c === chunks.length - 1) {
        // Appending past the last full chunk: a new chunk, no half of this one moved
        // (extents mapped upwards leave full chunks behind).
        ch = this.newChunk(c + 1);
        c++;
        k = 0;
      } else {
        // Split in halves and insert into the half that holds position k. (A full
        // chunk starts at index 0.)
        const half = max >> 1;
        const right = this.newChunk(c + 1);
        right.w.set(ch.w.subarray(half * W, max * W));
        right.prot.set(ch.prot.subarray(half, max));
        right.keys.set(ch.keys.subarray(half, max));
        right.n = max - half;
        ch.n = half;
        this.lastKeys[c] = ch.keys[half - 1];
        this.lastKeys[c + 1] = right.keys[right.n - 1];
        if (k > half) {
          ch = right;
          c++;
          k -= half;
        }
      }
    }
    const n = ch.n;
    const cap = ch.keys.length;
    let s = ch.s;
    // Move the part before k down, or the part from k up: the shorter one, where there is room.
    let down = k < n >> 1;
    if (down ? s === 0 : s + n === cap) {
      // No room on that side: centre the extents (one move per half the free room).
      const to = (cap - n) >> 1;
      ch.move(to, s, s + n);
      ch.s = s = to;
      if (down ? s === 0 : s + n === cap) down = !down;
    }
    if (down) {
      ch.move(s - 1, s, s + k);
      ch.s = --s;
    } else if (k < n) {
      ch.move(s + k + 1, s + k, s + n);
    }
    if (k === n) this.lastKeys[c] = key;
    const w = ch.w;
    const p = s + k;
    const i = p * W;
    w[i + IOVA_HI] = iovaHi;
    w[i + IOVA_LO] = iovaLo;
    w[i + LAST_HI] = lastHi;
    w[i + LAST_LO] = lastLo;
    w[i + PADDR_HI] = paddrHi;
    w[i + PADDR_LO] = paddrLo;
    ch.prot[p] = prot;
    ch.keys[p] = key;
    ch.n = n + 1;
    this.count++;
  }

  /** An empty full-size chunk inserted at index c (a spare one if there is one). */
  private newChunk(c: number): ExtentChunk {
    const ch = this.spares.pop() ?? new ExtentChunk(this.chunkSize);
    this.chunks.splice(c, 0, ch);
    this.lastKeys.splice(c, 0, 0);
    return ch;
  }

  /** Removes the extent at (c, k). */
  remove(c: number, k: number): void {
    const ch = this.chunks[c];
    const s = ch.s;
    const n = ch.n - 1;
    // Close the gap from the shorter side: the extents before k up, or those after it down.
    if (k < n - k) {
      ch.move(s + 1, s, s + k);
      ch.s = s + 1;
    } else if (k < n) {
      ch.move(s + k, s + k + 1, s + n + 1);
    } else if (n > 0) {
      this.lastKeys[c] = ch.keys[s + n - 1];
    }
    ch.n = n;
    this.count--;
    if (n === 0) {
      ch.s = 0;
      this.chunks.splice(c, 1);
      this.lastKeys.splice(c, 1);
      if (ch.keys.length === this.chunkSize && this.spares.length < SPARES) this.spares.push(ch);
    }
  }

  /**
   * Cuts the front of the extent at (c, k): its iova becomes (iovaHi, iovaLo), `delta`
   * bytes further (delta = new iova - old iova), and its paddr moves by the same delta.
   * Its last byte and key stay.
   */
  cutFront(c: number, k: number, iovaHi: number, iovaLo: number, deltaHi: number, deltaLo: number): void {
    const ch = this.chunks[c];
    const w = ch.w;
    const i = (ch.s + k) * W;
    w[i + IOVA_HI] = iovaHi;
    w[i + IOVA_LO] = iovaLo;
    addWords(w, i + PADDR_HI, deltaHi, deltaLo);
  }

  /** Cuts the back of the extent at (c, k): its last byte becomes (lastHi, lastLo). */
  cutBack(c: number, k: number, lastHi: number, lastLo: number): void {
    const key = (lastHi >>> 0) * TWO32 + (lastLo >>> 0);
    const ch = this.chunks[c];
    const i = (ch.s + k) * W;
    ch.w[i + LAST_HI] = lastHi;
    ch.w[i + LAST_LO] = lastLo;
    ch.keys[ch.s + k] = key;
    if (k === ch.n - 1) this.lastKeys[c] = key;
  }

  /**
   * Punches a hole into the extent at (c, k): it keeps [iova, leftLast] and a new extent
   * [right, last] follows it, its paddr `delta` bytes on (delta = right - iova).
   */
  split(c: number, k: number, leftLastHi: number, leftLastLo: number, rightHi: number, rightLo: number, deltaHi: number, deltaLo: number): void {
    const ch = this.chunks[c];
    const w = ch.w;
    const i = (ch.s + k) * W;
    const lastHi = w[i + LAST_HI];
    const lastLo = w[i + LAST_LO];
    const prot = ch.prot[ch.s + k];
    // The right part's paddr, with the carry, before the insert may move the extent.
    const plo = w[i + PADDR_LO] + (deltaLo >>> 0);
    const phi = w[i + PADDR_HI] + deltaHi + (plo >= TWO32 ? 1 : 0);
    this.cutBack(c, k, leftLastHi, leftLastLo);
    this.insert(c, k + 1, rightHi, rightLo, lastHi, lastLo, phi | 0, plo | 0, prot);
  }

  /** Every extent in order as [iova, size, paddr, prot]. */
  dump(): Array<[bigint, bigint, bigint, number]> {
    const out: Array<[bigint, bigint, bigint, number]> = [];
    for (const ch of this.chunks) {
      const w = ch.w;
      for (let p = ch.s; p < ch.s + ch.n; p++) {
        const i = p * W;
        const iova = wordsToU64(w[i + IOVA_HI], w[i + IOVA_LO]);
        const last = wordsToU64(w[i + LAST_HI], w[i + LAST_LO]);
        out.push([iova, last - iova + 1n, wordsToU64(w[i + PADDR_HI], w[i + PADDR_LO]), ch.prot[p]]);
      }
    }
    return out;
  }

  /**
   * Checks the table's invariants (tests): extents disjoint and ordered, keys Number(last),
   * lastKeys each chunk's last key, no empty chunk, the count. Returns the first broken one,
   * or null.
   */
  check(): string | null {
    let prevLast = -1n;
    let n = 0;
    for (let c = 0; c < this.chunks.length; c++) {
      const ch = this.chunks[c];
      if (ch.n === 0) return `chunk ${c} is empty`;
      if (ch.s < 0 || ch.s + ch.n > ch.keys.length || ch.keys.length > this.chunkSize) return `chunk ${c}: [${ch.s}, +${ch.n}) of ${ch.keys.length}`;
      for (let k = 0; k < ch.n; k++) {
        const iova = this.iova(c, k);
        const last = this.last(c, k);
        if (iova <= prevLast || last < iova) return `extent ${c}:${k} [${iova}, ${last}] out of order`;
        if (ch.keys[ch.s + k] !== Number(last)) return `extent ${c}:${k}: key ${ch.keys[ch.s + k]} for last ${last}`;
        prevLast = last;
      }
      if (this.lastKeys[c] !== ch.keys[ch.s + ch.n - 1]) return `chunk ${c}: lastKey ${this.lastKeys[c]}`;
      n += ch.n;
    }
    if (this.lastKeys.length !== this.chunks.length) return "lastKeys length";
    return n === this.count ? null : `count ${this.count}, extents ${n}`;
  }
}

/** Whether the last byte of extent `a` in words `w` is below (hi, lo). */
function lastBelow(w: Uint32Array, a: number, hi: number, lo: number): boolean {
  // hi and lo: uint32 (seek() normalised them).
  const h = w[a * W + LAST_HI];
  return h < hi || (h === hi && w[a * W + LAST_LO] < lo);
}

/** Adds (hi, lo) to the u64 at w[i] (hi word), w[i + 1] (lo word), mod 2^64. */
function addWords(w: Uint32Array, i: number, hi: number, lo: number): void {
  const l = w[i + 1] + (lo >>> 0);
  w[i + 1] = l; // a Uint32Array store wraps mod 2^32
  w[i] = w[i] + hi + (l >= TWO32 ? 1 : 0);
}
