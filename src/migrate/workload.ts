/**
 * The seeded DMA workload: where and how often a device writes guest memory. A device's
 * working set is a number of 2 MiB chunks scattered over RAM (buffers the guest driver
 * allocated); the first chunks form the hot set (rings), which takes `hotFraction` of the
 * writes. Each write is a burst of contiguous pages inside one chunk.
 *
 * The generator is a pure function of the seed and the call sequence, so a run is
 * reproducible, and it allocates only per chunk (working-set bytes / 2 MiB numbers), never
 * per page.
 */
import { Rng } from "../util/random";
import { GuestLayout, PAGE_SIZE } from "./layout";
import type { Workload } from "./scenario";

/** 4 KiB pages per placement chunk (2 MiB). */
export const CHUNK_PAGES = 512;

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
  private readonly rng: Rng;
  private carry = 0;

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
