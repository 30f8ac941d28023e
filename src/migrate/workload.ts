/**
 * The seeded DMA workload: where and how often a device writes guest memory. A device's
 * working set is a number of 2 MiB chunks scattered over RAM (buffers the guest driver
 * allocated); the first chunks form the hot set (rings), which takes `hotFraction` of the
 * writes. Each write is a burst of contiguous pages inside one chunk.
 *
 * The generator is a pure function of the seed and the call sequence, so a run is
 * reproducible, and it allocates only per chunk (working-set bytes / 2 MiB numbers), never
 * per page.
 *
 * A round's writes come out as the DISTINCT bursts the round's `n` draws hit
 * (`startRound` / `nextDistinct`), not draw by draw: a burst that repeats one already
 * written since the last harvest cannot change any dirty state, so only the distinct ones
 * are work for the model. Their number is at most the working set's burst slots, whatever
 * `n` is, so a round's cost follows the pages touched, not the simulated seconds (a 1 bit/s
 * link makes `n` astronomically large and costs no more than a fast one). The sampling is
 * exact in distribution: each burst slot has a fixed probability per draw (hot slots
 * `f/H + (1-f)/N`, cold ones `(1-f)/N`, as `next()` draws them), so the draws until the next
 * not-yet-hit slot are geometric with success probability the unhit slots' total weight;
 * which one it is follows by class weight, then uniformly inside the class (a sparse
 * Fisher-Yates over the class's slots).
 */
import { Rng } from "../util/random";
import { GuestLayout, PAGE_SIZE } from "./layout";
import type { Workload } from "./scenario";

/** 4 KiB pages per placement chunk (2 MiB). */
export const CHUNK_PAGES = 512;

/** Working sets of at most this many burst slots keep a dense shuffle array (16 MiB). */
const DENSE_SLOTS = 1 << 22;

/** One DMA write: pages [page, page+npages) of RAM, inside one region. */
export interface DmaBurst {
  page: number;
  npages: number;
}

/** Generates the writes of one device. */
export class DmaWorkload {
  /** First RAM page of each working-set chunk; hot chunks first. */
  readonly chunks: Float64Array;
  /** Number of hot chunks (a prefix of `chunks`). */
  readonly hotChunks: number;
  /** Pages per burst. */
  readonly burstPages: number;
  /** Pages per chunk actually used (less than 512 only for tiny working sets). */
  readonly chunkPages: number;
  /** Burst slots per chunk. */
  readonly slotsPerChunk: number;
  private readonly rng: Rng;
  private carry = 0;
  /** Per-draw probability of one hot slot and of one cold slot. */
  private readonly pHot: number;
  private readonly pCold: number;
  /** The round being drawn: draws left, slots of each class not hit yet, hit so far. */
  private left = 0;
  private hotUnhit = 0;
  private coldUnhit = 0;
  private hotHit = 0;
  private coldHit = 0;
  /**
   * The Fisher-Yates permutation of slot positions: a dense array for working sets up to
   * DENSE_SLOTS slots (never reset: a shuffle may start from any permutation), otherwise the
   * swapped positions only (identity elsewhere), cleared each round.
   */
  private perm: Uint32Array | null = null;
  private readonly swapped = new Map<number, number>();

  constructor(readonly workload: Workload, layout: GuestLayout, seed: number) {
    this.rng = new Rng(seed);
    const wsPages = Math.ceil(workload.workingSet / PAGE_SIZE);
    this.chunkPages = Math.min(CHUNK_PAGES, wsPages);
    const slots = Math.floor(layout.ramPages / CHUNK_PAGES);
    const n = Math.max(1, Math.min(slots, Math.ceil(wsPages / this.chunkPages)));
    // Partial Fisher-Yates over the RAM's 2 MiB slots: distinct, seeded placement.
    const perm = new Uint32Array(Math.max(slots, 1));
    for (let i = 0; i < perm.length; i++) perm[i] = i;
    this.chunks = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const j = i + this.rng.int(perm.length - i);
      const t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
      this.chunks[i] = perm[i] * CHUNK_PAGES;
    }
    const hotPages = Math.ceil(workload.hotSet / PAGE_SIZE);
    this.hotChunks = Math.min(n, Math.ceil(hotPages / this.chunkPages));
    this.burstPages = Math.min(this.chunkPages, Math.max(1, Math.round(workload.burst / PAGE_SIZE)));
    this.slotsPerChunk = Math.floor(this.chunkPages / this.burstPages);
    const all = n * this.slotsPerChunk;
    const hot = this.hotChunks * this.slotsPerChunk;
    const f = this.hotChunks > 0 ? workload.hotFraction : 0;
    this.pCold = (1 - f) / all;
    this.pHot = hot > 0 ? f / hot + this.pCold : 0;
  }

  /** Burst slots of the working set: the most distinct bursts one round can write. */
  get slots(): number {
    return this.chunks.length * this.slotsPerChunk;
  }

  /**
   * Starts drawing a round of `n` bursts (any non-negative number, 1e15 included) whose
   * distinct slots `nextDistinct` then returns. Consumes no draw from `next()`'s stream
   * beyond the ones it makes itself.
   */
  startRound(n: number): void {
    this.left = n;
    this.hotUnhit = this.hotChunks * this.slotsPerChunk;
    this.coldUnhit = this.slots - this.hotUnhit;
    this.hotHit = 0;
    this.coldHit = 0;
    this.swapped.clear();
    if (!this.perm && this.slots <= DENSE_SLOTS) {
      this.perm = new Uint32Array(this.slots);
      for (let i = 0; i < this.perm.length; i++) this.perm[i] = i;
    }
  }

  /** Share of the round's draws consumed so far, 0..1 (progress display). */
  roundFraction(n: number): number {
    return n > 0 ? 1 - this.left / n : 1;
  }

  /**
   * The next burst slot of the round that no earlier draw of the round hit, into `out`;
   * false once the round's draws are used up (or every slot is hit).
   */
  nextDistinct(out: DmaBurst): boolean {
    const rng = this.rng;
    const wHot = this.hotUnhit * this.pHot;
    const s = wHot + this.coldUnhit * this.pCold;
    if (!(s > 0) || this.left < 1) {
      this.left = 0;
      return false;
    }
    // Draws up to and including the next one that hits a new slot: Geometric(s) on 1, 2, ...
    const gap = s >= 1 ? 1 : 1 + Math.floor(Math.log(1 - rng.float()) / Math.log1p(-s));
    if (!(gap <= this.left)) {
      this.left = 0;
      return false;
    }
    this.left -= gap;
    let slot: number;
    if (rng.float() * s < wHot) {
      slot = this.pick(0, this.hotHit, this.hotUnhit);
      this.hotHit++;
      this.hotUnhit--;
    } else {
      slot = this.pick(this.hotChunks * this.slotsPerChunk, this.coldHit, this.coldUnhit);
      this.coldHit++;
      this.coldUnhit--;
    }
    const chunk = Math.floor(slot / this.slotsPerChunk);
    out.page = this.chunks[chunk] + (slot - chunk * this.slotsPerChunk) * this.burstPages;
    out.npages = this.burstPages;
    return true;
  }

  /**
   * One step of a Fisher-Yates shuffle over positions [base, base + hit + unhit): swaps a
   * uniformly chosen position of the unhit tail into position base + hit and returns the
   * slot now there. Positions never swapped hold their own index.
   */
  private pick(base: number, hit: number, unhit: number): number {
    const m = this.swapped;
    const i = base + hit;
    const j = i + this.rng.int(unhit);
    const perm = this.perm;
    if (perm) {
      const v = perm[j];
      perm[j] = perm[i];
      perm[i] = v;
      return v;
    }
    const vi = m.get(i) ?? i;
    const vj = m.get(j) ?? j;
    m.set(j, vi);
    m.set(i, vj);
    return vj;
  }

  /**
   * How many bursts the device issues in `seconds` of simulated time. Fractions carry over
   * to the next call so the long-run rate is exact.
   */
  burstsIn(seconds: number): number {
    const exact = (this.workload.rate * seconds) / (this.burstPages * PAGE_SIZE) + this.carry;
    const n = Math.floor(exact);
    this.carry = exact - n;
    return n;
  }

  /** The next burst, written into `out` (no allocation on the hot path). */
  next(out: DmaBurst): DmaBurst {
    const rng = this.rng;
    const hot = this.hotChunks > 0 && rng.float() < this.workload.hotFraction;
    const chunk = hot ? rng.int(this.hotChunks) : rng.int(this.chunks.length);
    const slots = Math.floor(this.chunkPages / this.burstPages);
    out.page = this.chunks[chunk] + rng.int(slots) * this.burstPages;
    out.npages = this.burstPages;
    return out;
  }

  /**
   * Runs of the first `bytes` of the hot set, as [page, npages] pairs: the pages an emulated
   * device keeps pinned.
   */
  hotPrefix(bytes: number): Array<[number, number]> {
    const runs: Array<[number, number]> = [];
    let left = Math.ceil(bytes / PAGE_SIZE);
    for (let i = 0; i < this.chunks.length && left > 0; i++) {
      const n = Math.min(left, this.chunkPages);
      runs.push([this.chunks[i], n]);
      left -= n;
    }
    return runs;
  }
}
