/**
 * UserMemory's GUP cache serves a pin inside the last settled stretch of an anonymous VMA
 * without looking anything up. Two processes run the same random calls, one with the cache
 * off: every pin must give the same run (pages, first physical address, reserved) and leave
 * the same state, which the final read-out over the whole window compares. The calls are
 * those that change what the cache depends on: mmap, munmap, mprotect, writes (faults that
 * make pages real, whole-block THP faults that drop PMD state), memfd file mappings, pins
 * of every size up to past a 2 MiB block, for read and write, short- and long-term.
 */
import { Process, PROT_NONE, PROT_READ, PROT_WRITE, PAGE_SIZE, GUP_LINUX_6_1, GUP_LINUX_6_2, MAP_PRIVATE, MAP_SHARED } from "../../src/process";
import { Rng } from "../../src/util/random";

const BASE = 0x7000_0000_0000;
const WINDOW = 2048; // pages: 8 MiB, four 2 MiB blocks

/**
 * Each process draws its synthetic physical bases (1 GiB apart) from its own range, so a run's
 * phys is compared as (which base, in the order the process's pins first met it; offset).
 */
const bases = new WeakMap<Process, Map<number, number>>();
const GIB = 2 ** 30;

function pin(p: Process, a: number, max: number, write: boolean, longterm: boolean): unknown {
  const r = p.mm!.memory.pinRun(a, max, write, longterm);
  if (typeof r === "number") return r;
  const seen = bases.get(p) ?? bases.set(p, new Map()).get(p)!;
  const base = Math.floor(r.phys / GIB);
  if (!seen.has(base)) seen.set(base, seen.size);
  return { npages: r.npages, reserved: r.reserved, base: seen.get(base), offset: r.phys % GIB };
}

describe("the GUP cache against the uncached path", () => {
  for (const [name, gup] of [
    ["6.1", GUP_LINUX_6_1],
    ["6.2+", GUP_LINUX_6_2],
  ] as const) {
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      it(`GUP ${name}, seed ${seed}: every pin and the final state agree`, () => {
        const rng = new Rng(seed * 7919 + (gup === GUP_LINUX_6_1 ? 0 : 1));
        const cached = new Process({ gup });
        const plain = new Process({ gup });
        plain.mm!.memory.gupCache = false;
        const both = <T>(f: (p: Process) => T): T => {
          const a = f(cached);
          const b = f(plain);
          expect(a).toEqual(b);
          return a;
        };
        both((p) => p.mmap(BASE, WINDOW * PAGE_SIZE, PROT_READ | PROT_WRITE).ret);
        let hits = 0;
        for (let step = 0; step < 1500; step++) {
          const page = rng.int(WINDOW);
          const a = BASE + page * PAGE_SIZE;
          const op = rng.int(20);
          if (op === 0) {
            const prot = [PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE][rng.int(3)];
            const len = (rng.int(64) + 1) * PAGE_SIZE;
            both((p) => p.mprotect(a, len, prot).errno);
          } else if (op === 1) {
            const len = (rng.int(64) + 1) * PAGE_SIZE;
            both((p) => p.munmap(a, len).errno);
          } else if (op === 2) {
            const len = (rng.int(rng.chance(0.2) ? 1024 : 64) + 1) * PAGE_SIZE;
            both((p) => p.mmap(a, len, PROT_READ | PROT_WRITE).errno);
          } else if (op === 3 && rng.chance(0.2)) {
            // A memfd mapped over part of the window (private or shared).
            const len = (rng.int(16) + 1) * PAGE_SIZE;
            both((p) => {
              const fd = p.memfdCreate("m").ret;
              p.ftruncate(fd, len);
              const r = p.mmapFd(a, len, PROT_READ | PROT_WRITE, rng.chance(0.5) ? MAP_SHARED : MAP_PRIVATE, fd);
              p.close(fd);
              return r.errno;
            });
          } else if (op <= 6) {
            // Writes: faults, some over whole blocks (THP, PMD state dropped).
            const len = rng.chance(0.1) ? 1024 * PAGE_SIZE : (rng.int(8) + 1) * 512;
            both((p) => p.fill(a, len, 1 + rng.int(255)).errno);
          } else {
            // Pins, mostly just above the last one (a VMM mapping upwards), some anywhere.
            const max = rng.chance(0.05) ? 512 + rng.int(600) : rng.int(8) + 1;
            const write = rng.chance(0.7);
            const longterm = rng.chance(0.7);
            const before = cachedHits(cached);
            both((p) => pin(p, a, max, write, longterm));
            const up = a + max * PAGE_SIZE;
            // Then more above it, sometimes for write where the first was read-only.
            for (let k = 0; k < 4; k++) {
              const w = rng.chance(0.2) ? !write : write;
              both((p) => pin(p, up + k * 2 * PAGE_SIZE, 2, w, longterm));
            }
            hits += cachedHits(cached) - before;
          }
        }
        // The final state, read out the same way on both (read pins fault the same way).
        for (let pg = 0; pg < WINDOW; pg += 3) both((p) => pin(p, BASE + pg * PAGE_SIZE, 1, false, false));
        // The draw exercises the cache, not only its misses.
        expect(hits).toBeGreaterThan(50);
      });
    }
  }
});

/** How many pins the cache has served (a counter kept for this test). */
function cachedHits(p: Process): number {
  return p.mm!.memory.gupHits;
}
