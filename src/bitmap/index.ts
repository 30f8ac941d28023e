/**
 * Dirty bitmaps in Wasm linear memory, in Linux's layout (bit i = u64 word i/64, bit i%64,
 * little-endian), and the `pack` primitive of update_user_bitmap() in three widths.
 */
import { WasmCore } from "../wasm/core";

/** How `pack` moves bits: the v12 byte loop, Linux's u64 words, or v128 lanes. */
export type PackVariant = "byte" | "word" | "simd";

/** Every pack variant, slowest first. */
export const PACK_VARIANTS: readonly PackVariant[] = ["byte", "word", "simd"];

/** Bytes of whole u64 words needed for `nbits` bits: Linux's DIRTY_BITMAP_BYTES(). */
export function bitmapBytes(nbits: number): number {
  return Math.ceil(nbits / 64) * 8;
}

/**
 * Packs `nbits` bits from `src` into `dst` at bit offset `dstBit` (both linear-memory
 * addresses), with update_user_bitmap()'s word semantics:
 * - s = dstBit % 64; ceil((s + nbits) / 64) whole destination words are written;
 * - when s != 0 the first destination word is ORed (bits already there are kept),
 *   otherwise it is overwritten like the rest;
 * - source bits at and above `nbits` are ignored.
 * Reads ceil(nbits/64) source words. The buffers must not overlap.
 */
export function pack(core: WasmCore, variant: PackVariant, dst: number, dstBit: number, src: number, nbits: number): void {
  switch (variant) {
    case "byte":
      core.x.packByte(dst, dstBit, src, nbits);
      return;
    case "word":
      core.x.packWord(dst, dstBit, src, nbits);
      return;
    case "simd":
      core.x.packSimd(dst, dstBit, src, nbits);
      return;
  }
}

/**
 * A bitmap of `nbits` bits owned in Wasm linear memory, padded by one spare u64 as
 * vfio_dma_bitmap_alloc() pads (so an in-place shift by < 64 bits stays in bounds).
 * Call `dispose()` to free it.
 */
export class Bitmap {
  /** Linear-memory address of word 0. */
  readonly ptr: number;
  /** Allocated size in bytes (whole words plus the spare word). */
  readonly bytes: number;

  private constructor(readonly core: WasmCore, readonly nbits: number, ptr: number, bytes: number) {
    this.ptr = ptr;
    this.bytes = bytes;
  }

  /** Allocates a zeroed bitmap; returns null when linear memory cannot hold it (ENOMEM). */
  static create(core: WasmCore, nbits: number): Bitmap | null {
    if (!Number.isInteger(nbits) || nbits < 0 || nbits > 0xffff_ffff) return null;
    const bytes = bitmapBytes(nbits) + 8;
    const ptr = core.alloc(bytes);
    return ptr === 0 ? null : new Bitmap(core, nbits, ptr, bytes);
  }

  /** Sets bits [start, start+n). */
  set(start: number, n = 1): void {
    this.core.x.setRange(this.ptr, start, n);
  }

  /** Clears bits [start, start+n). */
  clear(start = 0, n = this.nbits - start): void {
    this.core.x.clearRange(this.ptr, start, n);
  }

  /** Whether any bit in [start, start+n) is set. */
  test(start: number, n = 1): boolean {
    return this.core.x.testRange(this.ptr, start, n) !== 0;
  }

  /** Number of set bits in [start, start+n). */
  popcount(start = 0, n = this.nbits - start): number {
    return this.core.x.popcountRange(this.ptr, start, n) >>> 0;
  }

  /** First set bit at or after `from`, or `nbits` when none. */
  findNextSet(from = 0): number {
    return this.core.x.findNextSet(this.ptr, this.nbits, from) >>> 0;
  }

  /** Iterates the indices of set bits in ascending order. */
  *setBits(): IterableIterator<number> {
    for (let i = this.findNextSet(0); i < this.nbits; i = this.findNextSet(i + 1)) yield i;
  }

  /** A copy of the bitmap's whole words (bitmapBytes(nbits) bytes). */
  toBytes(): Uint8Array {
    return this.core.u8.slice(this.ptr, this.ptr + bitmapBytes(this.nbits));
  }

  /** Returns the memory to the Wasm heap; the object must not be used afterwards. */
  dispose(): void {
    this.core.freeSized(this.ptr, this.bytes);
  }
}
