/**
 * Property test: RangeDomain (extents in src/iommu/extent-table.ts) against the reference,
 * the pre-table implementation (test/iommu/range-domain-reference.ts), on seeded random
 * map / unmap / iovaToPhys sequences. Every call's result is compared, and after every call
 * the table's invariants are checked and dump() compared (the large scenario compares
 * dump() every DUMP_EVERY calls and extentCount after each).
 *
 * The scenarios cover addresses near 0, around 2^53 (where keys are rounded: with byte
 * pages, neighbouring extents' keys tie) and up to 2^64 - 1 (aperture end 2^64 - 1, every
 * key there ties), a page mask too wide for Numbers, unaligned and zero/negative/huge
 * arguments, overlaps (EEXIST), unmaps that split extents or stop at holes, and tiny chunk
 * sizes that split and drop chunks all the time; one scenario has thousands of extents in
 * default-size chunks. A physical range past 2^64 (or below 0) is where the two differ by
 * design: RangeDomain refuses it with -EINVAL, the reference took it.
 */
import { RangeDomain } from "../../src/iommu/range-domain";
import { Errno } from "../../src/uapi/errno";
import { Rng } from "../../src/util/random";
import { ReferenceRangeDomain } from "./range-domain-reference";

const TWO53 = 1n << 53n;
const TWO64 = 1n << 64n;

interface Scenario {
  name: string;
  pgsizeBitmap: bigint;
  aperture: { start: bigint; end: bigint };
  /** Where the random iovas start, and how many min pages they span. */
  base: bigint;
  span: number;
  /** Extents per chunk (undefined: the default). */
  chunk?: number;
  steps: number;
  /** Share of maps among the calls (the rest are unmaps). */
  mapShare: number;
  /** Compare dump() every this many calls. */
  dumpEvery: number;
  /** The scenario must see neighbouring extents whose keys tie. */
  ties?: boolean;
}

const SCENARIOS: Scenario[] = [
  { name: "near 0, 4K pages, chunks of 4", pgsizeBitmap: 0x40201000n, aperture: { start: 0n, end: (1n << 48n) - 1n }, base: 0n, span: 300, chunk: 4, steps: 3000, mapShare: 0.6, dumpEvery: 1 },
  { name: "aperture not at 0, chunks of 3", pgsizeBitmap: 0x1000n, aperture: { start: 0x10000n, end: 0x1ffffffn }, base: 0n, span: 600, chunk: 3, steps: 2000, mapShare: 0.6, dumpEvery: 1 },
  { name: "around 2^53, byte pages, chunks of 4", pgsizeBitmap: 0x1001n, aperture: { start: 0n, end: TWO64 - 1n }, base: TWO53 - 150n, span: 300, chunk: 4, steps: 3000, mapShare: 0.6, dumpEvery: 1, ties: true },
  { name: "around 2^53, 4K pages, chunks of 5", pgsizeBitmap: 0x1000n, aperture: { start: 0n, end: (1n << 60n) - 1n }, base: TWO53 - 150n * 0x1000n, span: 300, chunk: 5, steps: 3000, mapShare: 0.6, dumpEvery: 1 },
  { name: "up to 2^64 - 1, byte pages, chunks of 4", pgsizeBitmap: 0x1n, aperture: { start: TWO64 - (1n << 20n), end: TWO64 - 1n }, base: TWO64 - 250n, span: 300, chunk: 4, steps: 3000, mapShare: 0.6, dumpEvery: 1, ties: true },
  { name: "up to 2^64 - 1, 4K pages, chunks of 6", pgsizeBitmap: 0x40201000n, aperture: { start: 0n, end: TWO64 - 1n }, base: TWO64 - 250n * 0x1000n, span: 300, chunk: 6, steps: 3000, mapShare: 0.6, dumpEvery: 1 },
  { name: "4G min pages (mask wider than int32), chunks of 4", pgsizeBitmap: 1n << 32n, aperture: { start: 0n, end: (1n << 50n) - 1n }, base: 0n, span: 300, chunk: 4, steps: 2000, mapShare: 0.6, dumpEvery: 1 },
  { name: "thousands of extents, default chunks", pgsizeBitmap: 0x40201000n, aperture: { start: 0n, end: (1n << 48n) - 1n }, base: 1n << 32n, span: 12000, steps: 14000, mapShare: 0.75, dumpEvery: 250 },
];

/** What the sequences covered (asserted per scenario so that a generator that drifts into trivia fails). */
interface Counts {
  maps: number;
  mapped: number;
  eexist: number;
  einval: number;
  physRefused: number;
  unmapped: number;
  splits: number;
  holes: number;
  probes: number;
  translated: number;
  maxExtents: number;
  maxChunks: number;
  chunkDrops: number;
  ties: number;
}

function runScenario(s: Scenario, seed: number): Counts {
  const rng = new Rng(seed);
  const params = { pgsizeBitmap: s.pgsizeBitmap, aperture: s.aperture };
  const d = new RangeDomain(params, s.chunk);
  const ref = new ReferenceRangeDomain(params);
  const pg = s.pgsizeBitmap & -s.pgsizeBitmap;
  const n: Counts = { maps: 0, mapped: 0, eexist: 0, einval: 0, physRefused: 0, unmapped: 0, splits: 0, holes: 0, probes: 0, translated: 0, maxExtents: 0, maxChunks: 0, chunkDrops: 0, ties: 0 };
  let chunks = 0;
  let snapshot = ref.dump();

  const pickIova = (): bigint => {
    const r = rng.float();
    const inSpan = s.base + BigInt(rng.int(s.span)) * pg;
    if (r < 0.86) return inSpan;
    if (r < 0.9) return pg > 1n ? inSpan + 1n + BigInt(rng.int(Number(pg > 4096n ? 4096n : pg - 1n))) : inSpan;
    if (r < 0.93) return BigInt(rng.int(3)) * pg;
    if (r < 0.95) return -pg * BigInt(1 + rng.int(2));
    if (r < 0.98) return TWO64 - pg * BigInt(1 + rng.int(3));
    return TWO64 + pg * BigInt(rng.int(2));
  };
  const pickSize = (maxPages: number): bigint => {
    const r = rng.float();
    if (r < 0.85) return BigInt(1 + rng.int(maxPages)) * pg;
    if (r < 0.88) return 0n;
    if (r < 0.91) return -pg * BigInt(1 + rng.int(2));
    if (r < 0.94) return BigInt(1 + rng.int(4)) * pg + (pg > 1n ? 1n : 0n);
    if (r < 0.97) return BigInt(s.span) * pg * 2n;
    return TWO64 - BigInt(rng.int(2)) * pg;
  };
  const pickPaddr = (): bigint => {
    const r = rng.float();
    if (r < 0.8) return BigInt(rng.int(1 << 20)) * pg;
    if (r < 0.9) return TWO53 - BigInt(rng.int(64)) * pg;
    if (r < 0.95) return TWO64 - BigInt(1 + rng.int(64)) * pg;
    if (r < 0.97) return -pg;
    return BigInt(rng.int(1 << 20)) * pg + 1n;
  };

  for (let step = 0; step < s.steps; step++) {
    const where = `${s.name}, seed ${seed}, step ${step}`;
    let changed = false;
    if (rng.chance(s.mapShare)) {
      const iova = pickIova();
      const size = pickSize(8);
      const paddr = pickPaddr();
      const prot = rng.chance(0.9) ? rng.int(8) : 0x1234;
      const key = rng.chance(0.7) ? Number(iova) : undefined;
      n.maps++;
      const r = d.map(iova, paddr, size, prot, key);
      if (paddr < 0n || paddr + size > TWO64) {
        // Not a u64 physical range: refused (the reference does not check).
        if (r !== -Errno.EINVAL) throw new Error(`${where}: map(${iova}, ${paddr}, ${size}) of a physical range past 2^64 returned ${r}`);
        n.physRefused++;
      } else {
        const want = ref.map(iova, paddr, size, prot, key);
        if (r !== want) throw new Error(`${where}: map(${iova}, ${paddr}, ${size}, ${prot}, ${key}) returned ${r}, reference ${want}`);
        if (r === 0) n.mapped++;
        if (r === -Errno.EEXIST) n.eexist++;
        if (r === -Errno.EINVAL) n.einval++;
        changed = r === 0;
      }
    } else {
      const iova = pickIova();
      const size = rng.chance(0.1) ? BigInt(s.span) * pg : pickSize(12);
      const before = ref.extentCount;
      const got = d.unmap(iova, size);
      const want = ref.unmap(iova, size);
      if (got !== want) throw new Error(`${where}: unmap(${iova}, ${size}) returned ${got}, reference ${want}`);
      if (want > 0n) n.unmapped++;
      if (ref.extentCount > before) n.splits++;
      if (want > 0n && want < size) n.holes++;
      changed = want > 0n;
    }
    if (d.extentCount !== ref.extentCount) throw new Error(`${where}: ${d.extentCount} extents, reference ${ref.extentCount}`);
    if (changed || step % s.dumpEvery === 0) {
      if (changed) snapshot = ref.dump();
      if (step % s.dumpEvery === 0) {
        const bad = d.checkExtents();
        if (bad) throw new Error(`${where}: ${bad}`);
        compareDumps(where, d.dump(), snapshot);
        if (s.ties) n.ties += countTies(snapshot);
      }
    }
    n.maxExtents = Math.max(n.maxExtents, ref.extentCount);
    const nowChunks = chunkCount(d);
    if (nowChunks < chunks) n.chunkDrops++;
    chunks = nowChunks;
    n.maxChunks = Math.max(n.maxChunks, chunks);

    // Translations: at random, and at the edges of a random extent.
    const probes = [pickIova() + BigInt(rng.int(Number(pg > 4096n ? 4096n : pg)))];
    if (snapshot.length) {
      const [ei, es] = snapshot[rng.int(snapshot.length)];
      probes.push(ei, ei + es - 1n, ei + es, ei - 1n);
    }
    for (const p of probes) {
      const got = d.iovaToPhys(p);
      const want = ref.iovaToPhys(p);
      if (got !== want) throw new Error(`${where}: iovaToPhys(${p}) = ${got}, reference ${want}`);
      n.probes++;
      if (want !== null) n.translated++;
    }
  }
  // Unmapping every extent, from a random one on, both ways round, empties the table.
  const left = ref.dump();
  const from = rng.int(left.length + 1);
  for (const [i, sz] of [...left.slice(from), ...left.slice(0, from).reverse()]) {
    const got = d.unmap(i, sz);
    if (got !== sz || ref.unmap(i, sz) !== sz) throw new Error(`${s.name}, seed ${seed}: final unmap(${i}, ${sz}) returned ${got}`);
    const nowChunks = chunkCount(d);
    if (nowChunks < chunks) n.chunkDrops++;
    chunks = nowChunks;
  }
  if (d.extentCount !== 0 || chunks !== 0 || d.checkExtents() !== null) throw new Error(`${s.name}, seed ${seed}: ${d.extentCount} extents left in ${chunks} chunks`);
  return n;
}

/** The number of chunks of d's table (a private field: the test looks inside). */
function chunkCount(d: RangeDomain): number {
  return (d as unknown as { extents: { chunkCount: number } }).extents.chunkCount;
}

/** Neighbouring extents whose last bytes round to the same Number (their keys tie). */
function countTies(dump: Array<[bigint, bigint, bigint, number]>): number {
  let ties = 0;
  for (let i = 1; i < dump.length; i++) if (Number(dump[i][0] + dump[i][1] - 1n) === Number(dump[i - 1][0] + dump[i - 1][1] - 1n)) ties++;
  return ties;
}

function compareDumps(where: string, got: Array<[bigint, bigint, bigint, number]>, want: Array<[bigint, bigint, bigint, number]>): void {
  if (got.length !== want.length) throw new Error(`${where}: dump has ${got.length} extents, reference ${want.length}`);
  for (let i = 0; i < got.length; i++) {
    const a = got[i];
    const b = want[i];
    if (a[0] !== b[0] || a[1] !== b[1] || a[2] !== b[2] || a[3] !== b[3]) throw new Error(`${where}: extent ${i} is [${a}], reference [${b}]`);
  }
}

const total = { calls: 0, probes: 0 };

describe.each(SCENARIOS.map((s) => [s.name, s]))("RangeDomain against the reference: %s", (_name, s) => {
  for (const seed of [1, 2, 3]) {
    test(`seed ${seed}`, () => {
      const n = runScenario(s as Scenario, seed);
      total.calls += (s as Scenario).steps;
      total.probes += n.probes;
      // The sequence did what it is for.
      expect(n.mapped).toBeGreaterThan(50);
      expect(n.eexist).toBeGreaterThan(10);
      expect(n.einval).toBeGreaterThan(10);
      expect(n.physRefused).toBeGreaterThan(0);
      expect(n.splits).toBeGreaterThan(5);
      expect(n.holes).toBeGreaterThan(5);
      expect(n.translated).toBeGreaterThan(100);
      expect(n.maxChunks).toBeGreaterThan(4);
      expect(n.chunkDrops).toBeGreaterThan(0);
      if ((s as Scenario).chunk === undefined) expect(n.maxExtents).toBeGreaterThan(2000);
      if ((s as Scenario).ties) expect(n.ties).toBeGreaterThan(0);
    });
  }
});

afterAll(() => {
  if (process.env.VFIO_SIM_VERBOSE) console.log(`range-domain property: ${total.calls} calls, ${total.probes} translations`);
});
