/**
 * vhost IOTLB lookups: `itree_first(iova, iova)` on the augmented interval tree against a
 * linear scan of the same entries (in the same tree order, stopping at the first match),
 * measured in the same process. One call = one lookup, so the ops/s column is lookups/s
 * and the "GB/s" column is 10^9 lookups/s. Entries are 4 KiB or 2 MiB with random gaps,
 * inserted in random order; queries hit uniformly random entries at random offsets.
 */
import type { BenchCase, BenchSuite } from "../lib/harness";
import { VhostIotlb } from "../../src/vhost/iotlb";
import { Rng } from "../../src/util/random";

const SIZES: ReadonlyArray<[string, number]> = [
  ["4Ki entries", 4 << 10],
  ["64Ki entries", 64 << 10],
];
const QUERIES = 4096;

interface Span {
  start: bigint;
  last: bigint;
  addr: bigint;
}

/** The baseline: the first entry (in tree order) containing `iova`, by scanning. */
function linearFirst(spans: readonly Span[], iova: bigint): Span | null {
  for (let i = 0; i < spans.length; i++) {
    const s = spans[i];
    if (s.start <= iova && iova <= s.last) return s;
  }
  return null;
}

/** Results land here so the lookups cannot be optimised away. */
export let sink: unknown = null;

const suite: BenchSuite = {
  name: "vhost",
  description: "IOTLB itree_first lookups vs a linear scan of the same entries",
  runs: 5,
  maxTime: 0.2,
  cases(): BenchCase[] {
    const cases: BenchCase[] = [];
    for (const [group, n] of SIZES) {
      const rng = new Rng(0x5107 + n);
      const spans: Span[] = [];
      let iova = 0n;
      for (let i = 0; i < n; i++) {
        const size = rng.chance(0.1) ? 0x200000n : 0x1000n;
        iova += BigInt(rng.int(4)) * 0x1000n; // gap
        spans.push({ start: iova, last: iova + size - 1n, addr: 0x7f00_0000_0000n + iova });
        iova += size;
      }
      const tree = new VhostIotlb();
      const order = spans.map((_, i) => i);
      for (let i = order.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [order[i], order[j]] = [order[j], order[i]];
      }
      for (const i of order) tree.addRange(spans[i].start, spans[i].last, spans[i].addr, 3);
      const queries: bigint[] = [];
      for (let q = 0; q < QUERIES; q++) {
        const s = spans[rng.int(n)];
        queries.push(s.start + BigInt(rng.int(Number(s.last - s.start) + 1)));
      }
      // Both sides must answer the same; a wrong benchmark is worse than none.
      for (const q of queries) {
        if (tree.first(q, q)?.addr !== linearFirst(spans, q)?.addr) throw new Error("tree and scan disagree");
      }
      let qi = 0;
      let qj = 0;
      cases.push({
        group,
        name: "linear scan",
        bytes: 1,
        baseline: true,
        fn: () => {
          sink = linearFirst(spans, queries[qi]);
          qi = (qi + 1) & (QUERIES - 1);
        },
      });
      cases.push({
        group,
        name: "itree_first",
        bytes: 1,
        fn: () => {
          sink = tree.first(queries[qj], queries[qj]);
          qj = (qj + 1) & (QUERIES - 1);
        },
      });
    }
    return cases;
  },
};

export default suite;
