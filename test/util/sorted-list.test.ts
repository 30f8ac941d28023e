/**
 * ChunkedList against a plain sorted array (the naive reference): random inserts at the
 * lowerBound position, removals anywhere, lookups by index and by predicate, with enough
 * items that chunks split (512+) and empty out, so the in-place repair of the chunk starts
 * is exercised in every order; slice/from/toArray against Array.prototype.slice.
 */
import { ChunkedList, IovaList } from "../../src/util/sorted-list";
import { Rng } from "../../src/util/random";

const atOrAbove = (v: number, key: number): boolean => v >= key;

function check(list: ChunkedList<number>, ref: number[], rng: Rng): void {
  expect(list.length).toBe(ref.length);
  for (let probe = 0; probe < 8; probe++) {
    const i = rng.int(ref.length + 2) - 1;
    expect(list.at(i)).toBe(ref[i]);
    const key = rng.int(100_000);
    const want = ref.findIndex((v) => v >= key);
    expect(list.lowerBound(atOrAbove, key)).toBe(want < 0 ? ref.length : want);
    expect(list.lowerBound((v) => v >= key)).toBe(want < 0 ? ref.length : want);
  }
}

describe("ChunkedList", () => {
  test.each([1, 2, 3])("matches a sorted array (seed %i)", (seed) => {
    const rng = new Rng(seed);
    const list = new ChunkedList<number>();
    const ref: number[] = [];
    for (let step = 0; step < 6000; step++) {
      // Grow for the first half, shrink for the second: chunks split, then empty out.
      const grow = step < 3000 ? rng.int(4) !== 0 : rng.int(4) === 0;
      if (grow || ref.length === 0) {
        const v = rng.int(3) === 0 ? 100_000 + step : rng.int(100_000);
        const i = list.lowerBound(atOrAbove, v);
        list.insertAt(i, v);
        ref.splice(i, 0, v);
      } else {
        const i = rng.int(3) === 0 ? ref.length - 1 : rng.int(ref.length);
        expect(list.removeAt(i)).toBe(ref[i]);
        ref.splice(i, 1);
      }
      if (step % 7 === 0) check(list, ref, rng);
    }
    check(list, ref, rng);
    expect(list.toArray()).toEqual(ref);
    expect([...list]).toEqual(ref);
    const from = rng.int(ref.length);
    expect([...list.from(from)]).toEqual(ref.slice(from));
    expect(list.removeAt(ref.length)).toBeUndefined();
  });

  // IovaList searches Number keys; at and above 2^53 neighbouring iovas round to one key,
  // so the bases put 1500 slots of 16 inside one double's rounding step (2^60: 256) and
  // across the top of the u64 space, where only the BigInt tie-break can order them.
  test.each([
    ["small iovas", 0n],
    ["iovas past 2^53 that share rounded keys", 1n << 60n],
    ["iovas at the top of the u64 space", (1n << 64n) - 1500n * 16n - 64n],
  ])("IovaList.firstEndAbove and firstIovaAtOrAbove match a plain array (%s)", (_name, base) => {
    const rng = new Rng(9);
    const list = new IovaList<{ iova: bigint; end: bigint }>();
    const ref: Array<{ iova: bigint; end: bigint }> = [];
    // Disjoint ranges inserted in random order (slot k holds [base + k*16, + len)); some
    // removed again, so chunks split and empty out.
    const slots = Array.from({ length: 1500 }, (_, k) => k).sort(() => rng.float() - 0.5);
    const probe = (): void => {
      for (let p = 0; p < 3; p++) {
        const x = base + BigInt(rng.int(1500 * 16 + 200)) - 8n;
        const want = ref.findIndex((v) => v.end > x);
        expect(list.firstEndAbove(x)).toBe(want < 0 ? ref.length : want);
        const want2 = ref.findIndex((v) => v.iova >= x);
        expect(list.firstIovaAtOrAbove(x)).toBe(want2 < 0 ? ref.length : want2);
        // Exact hits and their neighbours, where keys tie.
        if (ref.length > 0) {
          const e = ref[rng.int(ref.length)];
          for (const y of [e.iova - 1n, e.iova, e.iova + 1n, e.end - 1n, e.end]) {
            const w = ref.findIndex((v) => v.end > y);
            expect(list.firstEndAbove(y)).toBe(w < 0 ? ref.length : w);
            const w2 = ref.findIndex((v) => v.iova >= y);
            expect(list.firstIovaAtOrAbove(y)).toBe(w2 < 0 ? ref.length : w2);
          }
        }
      }
    };
    for (const k of slots) {
      const item = { iova: base + BigInt(k * 16), end: base + BigInt(k * 16 + 1 + rng.int(15)) };
      const i = list.firstIovaAtOrAbove(item.iova);
      expect(i).toBe(list.lowerBound((v) => v.iova >= item.iova));
      list.insertAt(i, item);
      ref.splice(i, 0, item);
      if (rng.int(4) === 0) {
        const j = rng.int(ref.length);
        expect(list.removeAt(j)).toBe(ref[j]);
        ref.splice(j, 1);
      }
      probe();
    }
    expect(list.toArray()).toEqual(ref);
    expect(ref.every((v, i) => i === 0 || ref[i - 1].iova < v.iova)).toBe(true);
  });
});

describe("ChunkedList: the position a search leaves behind", () => {
  // A search remembers where its answer lies so the at()/insertAt()/removeAt() that follows
  // skips the chunk lookup; every change must forget it. Each step reads, inserts or removes
  // at the index a search just returned, then reads neighbours, against a plain array.
  test.each([4, 5])("search, then at/insertAt/removeAt at its index (seed %i)", (seed) => {
    const rng = new Rng(seed);
    const list = new ChunkedList<number>();
    const ref: number[] = [];
    for (let step = 0; step < 5000; step++) {
      const key = rng.int(50_000);
      const i = list.lowerBound(atOrAbove, key);
      expect(list.at(i)).toBe(ref[i]);
      const op = rng.int(3);
      if (op === 0 || ref.length < 600) {
        list.insertAt(i, key);
        ref.splice(i, 0, key);
      } else if (op === 1 && i < ref.length) {
        expect(list.removeAt(i)).toBe(ref[i]);
        ref.splice(i, 1);
      }
      for (const j of [i, i + 1, i - 1]) expect(list.at(j)).toBe(ref[j]);
    }
    expect(list.toArray()).toEqual(ref);
  });
});

describe("ChunkedList reads (slice, from, toArray)", () => {
  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: agrees with a plain array`, () => {
      const rng = new Rng(seed);
      const list = new ChunkedList<number>();
      const ref: number[] = [];
      for (let step = 0; step < 3000; step++) {
        if (ref.length === 0 || rng.chance(0.65)) {
          const v = rng.int(100000);
          list.insertAt(list.lowerBound((x) => x >= v), v);
          ref.splice(ref.findIndex((x) => x >= v) === -1 ? ref.length : ref.findIndex((x) => x >= v), 0, v);
        } else {
          const i = rng.int(ref.length);
          expect(list.removeAt(i)).toBe(ref.splice(i, 1)[0]);
        }
        if (step % 97 !== 0) continue;
        expect(list.length).toBe(ref.length);
        expect(list.toArray()).toEqual(ref);
        const probe = rng.int(100000);
        const lb = ref.findIndex((x) => x > probe);
        expect(list.lowerBound((x) => x > probe)).toBe(lb === -1 ? ref.length : lb);
        const i = rng.int(ref.length + 2);
        const j = rng.int(ref.length + 2);
        expect(list.slice(i, j)).toEqual(ref.slice(i, j));
        expect([...list.from(Math.min(i, ref.length))]).toEqual(ref.slice(i));
        expect(list.at(i)).toBe(ref[i]);
      }
      expect(list.length).toBeGreaterThan(600); // several chunks were split
    });
  }
});
