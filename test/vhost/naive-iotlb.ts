/**
 * An independent, deliberately naive model of drivers/vhost/iotlb.c: a plain array in
 * insertion order, linear scans for every query. Used as the reference in property tests.
 */
export const U64_MAX = (1n << 64n) - 1n;

export interface NaiveMap {
  start: bigint;
  last: bigint;
  addr: bigint;
  perm: number;
  seq: number;
}

export class NaiveIotlb {
  list: NaiveMap[] = [];
  private seq = 0;

  constructor(
    readonly limit = 0,
    readonly flags = 0,
  ) {}

  add(start: bigint, last: bigint, addr: bigint, perm: number): number {
    if (last < start) return -14;
    if (start === 0n && last === U64_MAX) {
      // Two entries because the size of [0, 2^64-1] does not fit in a u64.
      const half = 1n << 63n;
      this.add(0n, half - 1n, addr, perm);
      addr = (addr + half) & U64_MAX;
      start = half;
    }
    if (this.limit !== 0 && this.list.length === this.limit && (this.flags & 1) !== 0) this.list.shift();
    this.list.push({ start, last, addr, perm, seq: this.seq++ });
    return 0;
  }

  private overlaps(m: NaiveMap, start: bigint, last: bigint): boolean {
    return m.start <= last && m.last >= start;
  }

  /** Entries overlapping [start, last], sorted by start then age. */
  overlapping(start: bigint, last: bigint): NaiveMap[] {
    return this.sorted().filter((m) => this.overlaps(m, start, last));
  }

  first(start: bigint, last: bigint): NaiveMap | null {
    return this.overlapping(start, last)[0] ?? null;
  }

  del(start: bigint, last: bigint): number {
    const before = this.list.length;
    this.list = this.list.filter((m) => !this.overlaps(m, start, last));
    return before - this.list.length;
  }

  sorted(): NaiveMap[] {
    return [...this.list].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.seq - b.seq));
  }
}
