/**
 * struct iova_bitmap (drivers/iommu/iommufd/iova_bitmap.c in 6.12, drivers/vfio/ in 6.1)
 * as the VFIO core hands it to a driver's log_read_and_clear: the caller's bitmap in user
 * memory, one bit per `pageSize` of IOVA from `iova`. iova_bitmap_set() only ever sets bits.
 *
 * Pinning (the part user space can observe): "lazy" (6.9+) pins bitmap pages as bits are
 * set; a page that cannot be pinned for writing drops the rest of that set() call, and the
 * REPORT still succeeds (iova_bitmap_for_each calls the driver once for the whole range).
 * "upfront" (6.1, iova_bitmap_for_each over iova_bitmap_get/advance) pins up to 512 bitmap
 * pages, calls the driver for the IOVA those pages cover, and moves on; the first page that
 * cannot be pinned ends the REPORT with EFAULT, after the driver has read and cleared the
 * chunks before it (a partial effect Linux has).
 *
 * Model simplification: set() clips the range to the bitmap's [iova, iova + length) (Linux
 * may set bits past the end within an already pinned page; drivers never ask for that).
 */
import { Errno } from "../uapi/errno";
import type { UserAccess } from "../process/file";
import type { IovaBitmapSet } from "./driver";

const PAGE = 4096n;

/** Whether the user page holding `addr` can be written (pin_user_pages(FOLL_WRITE)). */
export function userPageWritable(task: UserAccess, addr: bigint): boolean {
  const page = addr & ~(PAGE - 1n);
  if (task.faultInWriteable) return task.faultInWriteable(page, 1) === 0;
  const b = task.copyFromUser(page, 1);
  return b !== null && task.copyToUser(page, b) === 0;
}

/** The user bitmap of one DMA_LOGGING_REPORT. */
export class UserIovaBitmap implements IovaBitmapSet {
  private readonly pgshift: bigint;

  constructor(
    private readonly task: UserAccess,
    readonly iova: bigint,
    readonly length: bigint,
    readonly pageSize: bigint,
    /** User address of the bitmap (bit 0: the page at `iova`). */
    readonly data: bigint,
  ) {
    let s = 0n;
    while (((pageSize >> s) & 1n) === 0n && s < 64n) s++;
    this.pgshift = s;
  }

  /** The bitmap's bytes in user memory: ceil(length / pageSize / 64) u64 words. */
  get bytes(): bigint {
    if (this.length === 0n) return 0n;
    return (((this.length - 1n) >> this.pgshift) / 64n + 1n) * 8n;
  }

  /**
   * 6.1's iova_bitmap_for_each(): `fn` per pinned chunk of the bitmap (at most 512 pages,
   * fewer when pin_user_pages_fast stops early); 0, the first -errno of `fn`, or -EFAULT
   * when a chunk's first page cannot be pinned. A zero length walks nothing.
   */
  forEachPinned(fn: (iova: bigint, length: bigint) => number): number {
    if (this.length === 0n) return 0;
    const total = ((this.length - 1n) >> this.pgshift) / 64n + 1n;
    const maxIova = this.iova + this.length - 1n;
    let base = 0n;
    while (base < total) {
      const addr = this.data + base * 8n;
      const pgoff = addr & (PAGE - 1n);
      let npages = ((total - base) * 8n + PAGE - 1n) / PAGE + (pgoff ? 1n : 0n);
      if (npages > 512n) npages = 512n;
      let pinned = 0n;
      while (pinned < npages && userPageWritable(this.task, (addr & ~(PAGE - 1n)) + pinned * PAGE)) pinned++;
      if (pinned === 0n) return -Errno.EFAULT;
      let remaining = total - base;
      const cover = (pinned * PAGE - pgoff + 7n) / 8n;
      if (cover < remaining) remaining = cover;
      const mIova = this.iova + ((base * 64n) << this.pgshift);
      let mLen = (remaining * 64n) << this.pgshift;
      if (mIova + mLen - 1n > maxIova) mLen -= mIova + mLen - 1n - maxIova;
      const r = fn(mIova, mLen);
      if (r < 0) return r;
      base += ((mLen - 1n) >> this.pgshift) / 64n + 1n;
    }
    return 0;
  }

  set(iova: bigint, length: bigint): void {
    if (length <= 0n) return;
    const lo = iova > this.iova ? iova : this.iova;
    const end = this.iova + this.length;
    const hi = iova + length < end ? iova + length : end;
    if (hi <= lo) return;
    let bit = (lo - this.iova) >> this.pgshift;
    const lastBit = (hi - 1n - this.iova) >> this.pgshift;
    while (bit <= lastBit) {
      const addr = this.data + bit / 8n;
      const pageEnd = (addr & ~(PAGE - 1n)) + PAGE;
      const bitsInPage = (pageEnd - addr) * 8n - (bit % 8n);
      const n = lastBit - bit + 1n < bitsInPage ? lastBit - bit + 1n : bitsInPage;
      if (!userPageWritable(this.task, addr)) return; // iova_bitmap_advance_to() failed: the rest is dropped
      this.orBits(bit, n);
      bit += n;
    }
  }

  /** bitmap_set() of `n` bits from `bit` (all within one user page, so plain numbers suffice). */
  private orBits(bit: bigint, n: bigint): void {
    const addr = this.data + bit / 8n;
    const start = Number(bit % 8n);
    const end = start + Number(n);
    const cur = this.task.copyFromUser(addr, Math.ceil(end / 8));
    if (!cur) return;
    for (let b = start; b < end; ) {
      if ((b & 7) === 0 && end - b >= 8) {
        cur[b >> 3] = 0xff;
        b += 8;
      } else {
        cur[b >> 3] |= 1 << (b & 7);
        b++;
      }
    }
    this.task.copyToUser(addr, cur);
  }
}
