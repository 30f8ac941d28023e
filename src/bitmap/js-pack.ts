/**
 * Plain-TypeScript pack kernels, the benchmarks' non-Wasm comparison points. Same
 * contract as `pack` in ./index.ts, on byte arrays: `dst` and `src` are byte offsets
 * into `mem`.
 */

/** Byte at a time with a carried shift (the v12 patch's loop, in JS). */
export function packBytesJs(mem: Uint8Array, dst: number, dstBit: number, src: number, nbits: number): void {
  if (nbits === 0) return;
  const s = dstBit & 63;
  const d = dst + Math.floor(dstBit / 64) * 8;
  const outBytes = Math.ceil((s + nbits) / 64) * 8;
  const srcBytes = Math.ceil(nbits / 8);
  const lastMask = nbits & 7 ? (1 << (nbits & 7)) - 1 : 0xff;
  const byteOff = s >>> 3;
  const bs = s & 7;
  let carry = 0;
  for (let b = 0; b < outBytes; b++) {
    let cur = 0;
    const i = b - byteOff;
    if (i >= 0 && i < srcBytes) {
      cur = mem[src + i];
      if (i === srcBytes - 1) cur &= lastMask;
    }
    const out = bs === 0 ? cur : ((cur << bs) | (carry >>> (8 - bs))) & 0xff;
    if (i >= 0) carry = cur;
    if (s !== 0 && b < 8) mem[d + b] |= out;
    else mem[d + b] = out;
  }
}

/**
 * 32-bit words (Int32Array lanes) with a carried shift. `dst` and `src` must be
 * 4-byte aligned. A 64-bit kernel word is two 32-bit halves, so the shift by s < 64
 * is a half-word move by s >= 32 plus a shift by s % 32.
 */
export function packU32Js(mem32: Int32Array, dst: number, dstBit: number, src: number, nbits: number): void {
  if (nbits === 0) return;
  const s = dstBit & 63;
  const d = (dst >>> 2) + Math.floor(dstBit / 64) * 2;
  const sp = src >>> 2;
  const srcHalves = Math.ceil(nbits / 32);
  const outHalves = Math.ceil((s + nbits) / 64) * 2;
  const lastMask = nbits & 31 ? (1 << (nbits & 31)) - 1 : -1;
  const hs = s >>> 5; // whole 32-bit halves of shift
  const bs = s & 31;
  const rb = 32 - bs;
  let carry = 0;
  const lastSrc = srcHalves - 1;
  for (let h = 0; h < outHalves; h++) {
    const i = h - hs;
    let cur = 0;
    if (i >= 0 && i < srcHalves) {
      cur = mem32[sp + i];
      if (i === lastSrc) cur &= lastMask;
    }
    const out = bs === 0 ? cur : (cur << bs) | (carry >>> rb);
    if (i >= 0) carry = cur;
    if (s !== 0 && h < 2) mem32[d + h] |= out;
    else mem32[d + h] = out;
  }
}
