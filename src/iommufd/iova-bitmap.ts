/**
 * iopt_read_and_clear_dirty_data() as Linux 6.12 runs it (drivers/iommu/iommufd/
 * io_pagetable.c and iova_bitmap.c since the lazy-pinning rework of 6.9): the driver walks
 * the contiguous areas from `iova` once, clearing dirty bits (unless NO_CLEAR) whatever
 * happens to the user bitmap; every dirty record goes through iova_bitmap_set(), which pins
 * the bitmap pages it needs on demand (FOLL_WRITE) and silently drops the bits of pages it
 * cannot pin. A hole in the areas ends the walk; the ioctl still returns 0 (the walk's
 * result is not returned). Oracle evidence: test/conformance/linux-6.12-iommufd/mock-dirty
 * (a read-only bitmap loses the bits and still clears them; a window whose last page is
 * unmapped keeps the bits of the pages before it).
 *
 * Model simplification: a record whose bits start on an unpinnable bitmap page and continue
 * on a pinnable one keeps the latter part (Linux drops the rest of such a record); records
 * are leaf-sized, so this needs a leaf spanning two bitmap pages (page_size below 64 bytes).
 */
import { Errno } from "../uapi/errno";
import type { UserAccess } from "../process/file";
import { DirtyTarget, IotlbGather } from "../iommu/pgtable";
import type { WasmCore } from "../wasm/core";
import type { HwptObj } from "./ioas";
import { IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR } from "./uapi";

const PAGE = 4096n;
/** IOVA covered by one walk step: 1 GiB, or 2^27 bits of bitmap when page_size is tiny. */
const CHUNK_IOVA = 1n << 30n;
const CHUNK_MAX_BITS = 1n << 27n;

/** Whether the user page at `page` (page-aligned) can be pinned for writing. */
type Pinnable = (page: bigint) => boolean;

/** Returns 0 (the walk's own errors are not reported) or -ENOMEM before anything changed. */
export function readAndClearDirty612(core: WasmCore, task: UserAccess, h: HwptObj, iova: bigint, length: bigint, pageSize: bigint, data: bigint, flags: number, pinnable: Pinnable): number {
  let pgshift = 0n;
  while (((pageSize >> pgshift) & 1n) === 0n) pgshift++;
  const last = iova + length - 1n;
  // The contiguous run of areas from iova (iopt_for_each_contig_area); none: nothing walked.
  let end = iova;
  for (const a of h.ioas.areas) {
    if (a.iova + a.length <= end) continue;
    if (a.iova > end) break;
    end = a.iova + a.length;
    if (end > last) break;
  }
  const walkLast = end - 1n < last ? end - 1n : last;
  if (walkLast < iova || walkLast >= 1n << 53n) return 0;
  let chunk = CHUNK_IOVA;
  if (chunk >> pgshift > CHUNK_MAX_BITS) chunk = CHUNK_MAX_BITS << pgshift;
  if (chunk >> pgshift < 64n) chunk = 64n << pgshift;
  const chunkBits = chunk >> pgshift;
  const scratchBytes = Number(chunkBits / 8n) + 8;
  const scratch = core.alloc(scratchBytes);
  const target = scratch ? DirtyTarget.create(core) : null;
  const gather = target ? IotlbGather.create(core) : null;
  if (!scratch || !target || !gather) {
    if (scratch) core.free(scratch);
    target?.dispose();
    return -Errno.ENOMEM;
  }
  const dom = h.domain;
  let ahead: [number, number] | null = null;
  for (let s = iova; s <= walkLast; s += chunk) {
    const e = s + chunk - 1n < walkLast ? s + chunk - 1n : walkLast;
    core.x.fillBytes(scratch, 0, scratchBytes);
    target.setWindowShift(scratch, Number(s), Number(pgshift), 0, Number(chunkBits));
    if (ahead) {
      target.record(ahead[0], ahead[1]);
      ahead = null;
      target.setWindowShift(scratch, Number(s), Number(pgshift), 0, Number(chunkBits));
    }
    dom.readAndClearDirty(Number(s), Number(e - s + 1n), flags, target, gather);
    if (target.spillStart >= 0 && e < walkLast) ahead = [target.spillStart, target.spillEnd - target.spillStart];
    // iova_bitmap_set(): OR the chunk's bits into the pinnable pages of the user bitmap.
    const firstByte = ((s - iova) >> pgshift) / 8n;
    const nbytes = ((e - s) >> pgshift) / 8n + 1n;
    orIntoUser(core, task, data + firstByte, scratch, Number(nbytes), pinnable);
  }
  if (!(flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR)) dom.iotlbSync(gather);
  core.free(scratch);
  target.dispose();
  gather.dispose();
  return 0;
}

/**
 * ORs the `len` bytes at linear address `src` into user memory at `at`, page by page,
 * skipping pages that cannot be pinned. Runs of zero bytes are skipped by a Wasm scan (a
 * 1 TiB guest's chunk is 32 KiB of mostly zero bits), so only pages with bits cost a copy.
 */
function orIntoUser(core: WasmCore, task: UserAccess, at: bigint, src: number, len: number, pinnable: Pinnable): void {
  const nbits = 8 * len;
  let i = 0;
  while (i < len) {
    const next = core.x.findNextSet(src, nbits, 8 * i) >>> 0;
    if (next >= nbits) break;
    // Start at the user page holding the first set bit.
    const first = Math.floor(next / 8);
    const pageOff = Number((at + BigInt(first)) & (PAGE - 1n));
    i = Math.max(i, first - pageOff);
    const addr = at + BigInt(i);
    const page = addr & ~(PAGE - 1n);
    const n = Math.min(len - i, Number(page + PAGE - addr));
    const part = core.u8.subarray(src + i, src + i + n);
    if (pinnable(page)) {
      const cur = task.copyFromUser(addr, n);
      if (cur) {
        for (let k = 0; k < n; k++) cur[k] |= part[k];
        task.copyToUser(addr, cur);
      }
    }
    i += n;
  }
}
