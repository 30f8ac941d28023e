import { VhostIotlb, VhostIotlbMap, U64_MAX, VHOST_IOTLB_FLAG_RETIRE } from "../../src/vhost/iotlb";
import { Errno } from "../../src/uapi/errno";
import { Rng } from "../../src/util/random";
import { NaiveIotlb, NaiveMap } from "./naive-iotlb";

const view = (m: VhostIotlbMap | NaiveMap | null) =>
  m === null ? null : { start: m.start, last: m.last, addr: m.addr, perm: m.perm };

describe("vhost_iotlb rules", () => {
  test("last < start is EFAULT and adds nothing", () => {
    const t = new VhostIotlb();
    expect(t.addRange(10n, 9n, 0n, 3)).toBe(-Errno.EFAULT);
    expect(t.nmaps).toBe(0);
  });

  test("[0, ULONG_MAX] is split into two halves with addr advanced", () => {
    const t = new VhostIotlb();
    expect(t.addRange(0n, U64_MAX, 0x1000n, 3)).toBe(0);
    expect(t.entries().map(view)).toEqual([
      { start: 0n, last: (1n << 63n) - 1n, addr: 0x1000n, perm: 3 },
      { start: 1n << 63n, last: U64_MAX, addr: 0x1000n + (1n << 63n), perm: 3 },
    ]);
    expect(t.entries().map((m) => m.size)).toEqual([1n << 63n, 1n << 63n]);
  });

  test("overlaps are stored (no check in the tree); del_range removes every overlapping entry whole", () => {
    const t = new VhostIotlb();
    t.addRange(0n, 99n, 0n, 3);
    t.addRange(50n, 149n, 1000n, 1);
    t.addRange(200n, 299n, 2000n, 2);
    expect(t.nmaps).toBe(3);
    expect(t.delRange(99n, 100n)).toBe(2);
    expect(t.entries().map(view)).toEqual([{ start: 200n, last: 299n, addr: 2000n, perm: 2 }]);
  });

  test("itree_first returns the lowest start, the oldest among equal starts", () => {
    const t = new VhostIotlb();
    t.addRange(10n, 20n, 1n, 3);
    t.addRange(5n, 30n, 2n, 3);
    t.addRange(5n, 6n, 3n, 3);
    expect(t.first(15n, 15n)!.addr).toBe(2n);
    expect(t.first(6n, 100n)!.addr).toBe(2n);
    expect(t.first(31n, 100n)).toBeNull();
    expect(t.overlapping(0n, 100n).map((m) => m.addr)).toEqual([2n, 3n, 1n]);
  });

  test("limit with RETIRE evicts the oldest inserted entry (FIFO), not the lowest", () => {
    const t = new VhostIotlb(2, VHOST_IOTLB_FLAG_RETIRE);
    t.addRange(100n, 199n, 0n, 3);
    t.addRange(0n, 99n, 0n, 3);
    t.addRange(300n, 399n, 0n, 3);
    expect(t.nmaps).toBe(2);
    expect(t.entries().map((m) => m.start)).toEqual([0n, 300n]);
  });

  test("limit without RETIRE is not enforced", () => {
    const t = new VhostIotlb(2, 0);
    for (let i = 0n; i < 5n; i++) expect(t.addRange(i * 10n, i * 10n + 9n, 0n, 3)).toBe(0);
    expect(t.nmaps).toBe(5);
  });

  test("the whole-range split counts as two insertions against the limit", () => {
    const t = new VhostIotlb(2, VHOST_IOTLB_FLAG_RETIRE);
    t.addRange(5n, 5n, 0n, 3);
    t.addRange(0n, U64_MAX, 0n, 3);
    expect(t.entries().map((m) => m.start)).toEqual([0n, 1n << 63n]);
  });

  test("an INVALIDATE-style query with start > last removes only entries straddling the boundary", () => {
    // vhost_chr_write_iter allows INVALIDATE with size 0: [iova, iova-1].
    const t = new VhostIotlb();
    t.addRange(0n, 9n, 0n, 3);
    t.addRange(10n, 19n, 0n, 3);
    t.addRange(5n, 14n, 0n, 3);
    expect(t.delRange(10n, 9n)).toBe(1);
    expect(t.entries().map((m) => m.start)).toEqual([0n, 10n]);
  });

  test("setAddr and mapFree refuse entries of another tree", () => {
    const a = new VhostIotlb();
    const b = new VhostIotlb();
    a.addRange(0n, 9n, 0n, 3);
    const m = a.first(0n, 0n)!;
    expect(b.setAddr(m, 5n)).toBe(false);
    expect(b.mapFree(m)).toBe(false);
    expect(a.setAddr(m, 5n)).toBe(true);
    expect(a.first(0n, 0n)!.addr).toBe(5n);
    expect(a.mapFree(m)).toBe(true);
    expect(a.mapFree(m)).toBe(false);
  });
});

describe("property: random add/del sequences agree with a naive list", () => {
  const span = (rng: Rng): [bigint, bigint] => {
    switch (rng.int(10)) {
      case 0:
        return [0n, U64_MAX];
      case 1: {
        const s = U64_MAX - BigInt(rng.int(300));
        return [s, s + BigInt(rng.int(Number(U64_MAX - s) + 1))];
      }
      case 2: {
        // Degenerate query/range (start > last), as INVALIDATE with size 0 produces.
        const s = BigInt(rng.int(1000) + 1);
        return [s, s - 1n];
      }
      default: {
        const s = BigInt(rng.int(1000));
        return [s, s + BigInt(rng.int(rng.chance(0.2) ? 400 : 30))];
      }
    }
  };

  for (const [limit, flags, seed] of [
    [0, 0, 1],
    [0, 0, 2],
    [16, VHOST_IOTLB_FLAG_RETIRE, 3],
    [7, VHOST_IOTLB_FLAG_RETIRE, 4],
    [16, 0, 5],
  ] as const) {
    test(`limit=${limit} flags=${flags} seed=${seed}`, () => {
      const rng = new Rng(0x107b + seed);
      const t = new VhostIotlb(limit, flags);
      const ref = new NaiveIotlb(limit, flags);
      for (let step = 0; step < 3000; step++) {
        const [s, l] = span(rng);
        const op = rng.int(10);
        if (op < 5) {
          const addr = BigInt(rng.u32());
          const perm = rng.int(4);
          expect(t.addRange(s, l, addr, perm)).toBe(ref.add(s, l, addr, perm));
        } else if (op < 7) {
          expect(t.delRange(s, l)).toBe(ref.del(s, l));
        } else {
          expect(view(t.first(s, l))).toEqual(view(ref.first(s, l)));
          expect(t.overlapping(s, l).map(view)).toEqual(ref.overlapping(s, l).map(view));
        }
        expect(t.nmaps).toBe(ref.list.length);
        if (step % 50 === 0) {
          expect(t.entries().map(view)).toEqual(ref.sorted().map(view));
          expect(t.listOrder().map(view)).toEqual(ref.list.map(view));
          expect(t.checkInvariants()).toBeNull();
        }
      }
      expect(t.entries().map(view)).toEqual(ref.sorted().map(view));
      expect(t.checkInvariants()).toBeNull();
    });
  }

  test("the tree stays balanced: 64 Ki sorted insertions give height <= 1.45 log2(n)", () => {
    const t = new VhostIotlb();
    const n = 1 << 16;
    for (let i = 0; i < n; i++) t.addRange(BigInt(i) * 4096n, BigInt(i) * 4096n + 4095n, 0n, 3);
    expect(t.height).toBeLessThanOrEqual(Math.ceil(1.45 * Math.log2(n)));
    expect(t.checkInvariants()).toBeNull();
    expect(t.first(4096n * 1234n + 7n, 4096n * 1234n + 7n)!.start).toBe(4096n * 1234n);
  });
});
