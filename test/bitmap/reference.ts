/** Naive per-bit references for the bitmap kernels: obviously right, deliberately slow. */

export function getBit(mem: Uint8Array, base: number, i: number): number {
  return (mem[base + (i >>> 3)] >>> (i & 7)) & 1;
}

export function putBit(mem: Uint8Array, base: number, i: number, v: number): void {
  const b = base + (i >>> 3);
  mem[b] = v ? mem[b] | (1 << (i & 7)) : mem[b] & ~(1 << (i & 7));
}

/** update_user_bitmap()'s result, one bit at a time (see assembly/bitmap/pack.ts for the contract). */
export function refPack(mem: Uint8Array, dst: number, dstBit: number, src: number, nbits: number): void {
  if (nbits === 0) return;
  const s = dstBit % 64;
  const base = dst + Math.floor(dstBit / 64) * 8;
  const nw = Math.ceil((s + nbits) / 64);
  const out: number[] = [];
  for (let p = 0; p < nw * 64; p++) {
    let bit = p >= s && p - s < nbits ? getBit(mem, src, p - s) : 0;
    if (s !== 0 && p < 64) bit |= getBit(mem, base, p);
    out.push(bit);
  }
  out.forEach((bit, p) => putBit(mem, base, p, bit));
}
