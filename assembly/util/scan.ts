// A plain read of linear memory (XOR-fold with v128 loads): the "read the same bytes"
// baseline the benchmarks compare NO_CLEAR harvests against.

/** XOR of all 16-byte lanes in [ptr, ptr+bytes) folded to 32 bits; bytes % 64 == 0. */
export function scanXor(ptr: usize, bytes: usize): u32 {
  let a = i64x2.splat(0);
  let b = i64x2.splat(0);
  let c = i64x2.splat(0);
  let d = i64x2.splat(0);
  const end = ptr + bytes;
  for (let p = ptr; p < end; p += 64) {
    a = v128.xor(a, v128.load(p));
    b = v128.xor(b, v128.load(p, 16));
    c = v128.xor(c, v128.load(p, 32));
    d = v128.xor(d, v128.load(p, 48));
  }
  const x = v128.xor(v128.xor(a, b), v128.xor(c, d));
  return i32x4.extract_lane(x, 0) ^ i32x4.extract_lane(x, 1) ^ i32x4.extract_lane(x, 2) ^ i32x4.extract_lane(x, 3);
}
