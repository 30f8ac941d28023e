/** u64ToNumber / bigintToNumber / numberToU64 against Number() and BigInt() on edge and random values. */
import { bigintToNumber, numberToU64, u64Hi, u64Lo, u64ToNumber, wordsToU64 } from "../../src/util/u64";
import { Rng } from "../../src/util/random";

describe("u64 conversions", () => {
  test("u64ToNumber is Number() for every u64, numberToU64 is BigInt() for safe integers", () => {
    const rng = new Rng(7);
    const big: bigint[] = [0n, 1n, 0xffffffffn, 0x100000000n, (1n << 53n) - 1n, 1n << 53n, (1n << 53n) + 1n, (1n << 53n) + 3n, (1n << 64n) - 1n, (1n << 63n) + 1025n];
    for (let i = 0; i < 2000; i++) big.push((BigInt(rng.u32()) << 32n) | BigInt(rng.u32()), BigInt(rng.u32()) << BigInt(rng.int(33)));
    for (const x of big) expect(u64ToNumber(x)).toBe(Number(x));
    const nums = [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER];
    for (let i = 0; i < 2000; i++) nums.push(rng.int(2 ** 53), rng.int(2 ** 33));
    for (const n of nums) expect(numberToU64(n)).toBe(BigInt(n));
  });

  test("bigintToNumber is Number() for every bigint, u64 or not", () => {
    const rng = new Rng(11);
    const xs: bigint[] = [0n, 1n, -1n, (1n << 53n) + 1n, (1n << 54n) + 2n, (1n << 64n) - 1n, 1n << 64n, (1n << 64n) + 1n, -(1n << 64n), (1n << 65n) + 3n, -((1n << 53n) + 1n)];
    for (let i = 0; i < 2000; i++) {
      const x = (BigInt(rng.u32()) << 32n) | BigInt(rng.u32());
      xs.push(x, -x, x << BigInt(rng.int(12)), x >> BigInt(rng.int(40)));
    }
    for (const x of xs) expect(bigintToNumber(x)).toBe(Number(x));
  });

  test("u64Hi / u64Lo are the words of x mod 2^64, wordsToU64 joins them back", () => {
    const rng = new Rng(13);
    const xs: bigint[] = [0n, 1n, 0xffffffffn, 1n << 32n, (1n << 64n) - 1n, 1n << 64n, -1n, -(1n << 32n)];
    for (let i = 0; i < 2000; i++) xs.push((BigInt(rng.u32()) << 32n) | BigInt(rng.u32()));
    for (const x of xs) {
      const m = BigInt.asUintN(64, x);
      expect(u64Hi(x)).toBe(Number(m >> 32n));
      expect(u64Lo(x)).toBe(Number(m & 0xffffffffn));
      expect(wordsToU64(u64Hi(x), u64Lo(x))).toBe(m);
    }
  });
});
