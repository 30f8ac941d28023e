/**
 * ChunkedList against a plain sorted array: random inserts at lowerBound(), removals,
 * and every read (at, lowerBound, slice, from, toArray, length) after each step, across
 * chunk splits (more than 2 x 256 items) and emptied chunks.
 */
import { ChunkedList } from "../../src/util/sorted-list";
import { Rng } from "../../src/util/random";

describe("ChunkedList", () => {
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
