/**
 * The dirty-bitmap read-out of type1: update_user_bitmap() with the kernel's exact word
 * operations, run on the Wasm `pack` kernels, and the per-GET clear/repopulate step of
 * vfio_iova_dirty_bitmap(). Per-dma bitmaps persist between calls, so the kernel's quirk of
 * stale shifted bits (reference §8.8) comes out the same.
 */
import { pack, bitmapBytes } from "../bitmap";
import { U64_MASK } from "../uapi/vfio";
import { Errno } from "../uapi/errno";
import type { Task } from "../process/task";
import type { VfioDma } from "./dma";
import type { VfioIommu } from "./vfio-iommu";

const u64 = (x: bigint): bigint => x & U64_MASK;

/** Geometry of one dma's copy-out: where its bits land in the user bitmap. */
interface CopyGeometry {
  nbits: number;
  /** u64 index in the user bitmap of the first word written. */
  copyOffset: bigint;
  /** bit_offset % 64. */
  shift: number;
  /** Whole u64 words written: DIRTY_BITMAP_BYTES(nbits + shift) / 8. */
  words: number;
  /** User address of the first word written. */
  dst: bigint;
}

function geometry(dma: VfioDma, ubuf: bigint, baseIova: bigint, pgsize: bigint): CopyGeometry {
  const nbits = Number(dma.size / pgsize);
  const bitOffset = (dma.iova - baseIova) / pgsize;
  const copyOffset = bitOffset / 64n;
  const shift = Number(bitOffset % 64n);
  const words = bitmapBytes(nbits + shift) / 8;
  return { nbits, copyOffset, shift, words, dst: u64(ubuf + copyOffset * 8n) };
}

/** copy_to_user from linear memory: straight into user frames when they share the core. */
function copyOut(iommu: VfioIommu, current: Task, dst: bigint, src: number, len: number): number {
  const mem = current.mm?.memory;
  if (mem && mem.core === iommu.core) return mem.copyToUserFromLinear(dst, src, len);
  return current.copyToUser(dst, iommu.core.u8.slice(src, src + len));
}

/**
 * update_user_bitmap(): reports one dma's bits into the user bitmap at `ubuf` relative to
 * `baseIova`. Marks everything dirty first when an IOMMU-backed group cannot report
 * (num_non_pinned_groups && iommu_mapped). With a non-zero shift, the dma bitmap is shifted
 * in place and the user's first word is ORed into it (all 64 bits), then whole words are
 * copied out. Returns 0 or -EFAULT (the in-place shift has happened either way, like Linux).
 */
export function updateUserBitmap(iommu: VfioIommu, current: Task, ubuf: bigint, dma: VfioDma, baseIova: bigint, pgsize: bigint): number {
  const bitmap = dma.bitmap;
  if (!bitmap) return 0;
  const g = geometry(dma, ubuf, baseIova, pgsize);
  if (iommu.hwDirty && dma.iommuMapped) {
    // Dirty-capable hardware (a model extension): IOMMU-backed devices report what they
    // actually wrote, harvested from the page tables, instead of "every mapped page".
    iommu.vfioDmaHarvestHwDirty(dma, pgsize, bitmap.ptr);
    dma.bitmapLowClean = false;
  } else if (iommu.numNonPinnedGroups && dma.iommuMapped) {
    bitmap.set(0, g.nbits);
    dma.bitmapLowClean = false;
  }
  const core = iommu.core;
  const bytes = g.words * 8;
  if (g.shift === 0) {
    if (iommu.opts.bitmapCopy === "byte") {
      // The v12 proposal copied byte by byte; the result is the same words.
      const scratch = core.alloc(bytes, false);
      if (scratch === 0) return -Errno.ENOMEM;
      pack(core, "byte", scratch, 0, bitmap.ptr, g.words * 64);
      const r = copyOut(iommu, current, g.dst, scratch, bytes);
      core.free(scratch);
      return r ? -Errno.EFAULT : 0;
    }
    return copyOut(iommu, current, g.dst, bitmap.ptr, bytes) ? -Errno.EFAULT : 0;
  }
  // bitmap_shift_left() over nbits + shift bits, then bitmap_or() with the user's word:
  // pack() computes exactly those words when its first destination word holds `leftover`.
  const leftover = current.copyFromUser(g.dst, 8);
  const scratch = core.alloc(bytes, true);
  if (scratch === 0) return -Errno.ENOMEM;
  if (leftover) core.u8.set(leftover, scratch);
  pack(core, iommu.opts.bitmapCopy, scratch, g.shift, bitmap.ptr, g.words * 64 - g.shift);
  core.x.copyBytes(bitmap.ptr, scratch, bytes);
  if (!leftover) {
    core.free(scratch);
    return -Errno.EFAULT;
  }
  const r = copyOut(iommu, current, g.dst, scratch, bytes);
  core.free(scratch);
  return r ? -Errno.EFAULT : 0;
}

/**
 * One dma of vfio_iova_dirty_bitmap(): update_user_bitmap(), then bitmap_clear(0, nbits) and
 * vfio_dma_populate_bitmap(). Returns 0 or -EFAULT (then nothing is cleared, like Linux).
 */
export function reportAndClear(iommu: VfioIommu, current: Task, ubuf: bigint, dma: VfioDma, baseIova: bigint, pgsize: bigint): number {
  const r = updateUserBitmap(iommu, current, ubuf, dma, baseIova, pgsize);
  if (r) return r;
  const bitmap = dma.bitmap;
  if (!bitmap) return 0;
  bitmap.clear(0, Number(dma.size / pgsize));
  dma.bitmapLowClean = true;
  iommu.vfioDmaPopulateBitmap(dma, pgsize);
  return 0;
}
