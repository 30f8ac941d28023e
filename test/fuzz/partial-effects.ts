/**
 * The partial effects Linux itself leaves behind when a call fails: the ONLY exceptions to
 * "a failed call leaves the state exactly as it was". Each entry says why.
 *
 * - type1 DIRTY_PAGES GET_BITMAP, EFAULT: vfio_iova_dirty_bitmap() reports and clears dma
 *   by dma and returns at the first copy-out that faults; the dmas before it were already
 *   reported and cleared (test/conformance/new/partial-effects.trace, bitmap-faults.trace).
 *   The mapping set, pins and accounting stay; bitmap contents may differ.
 * - type1 UNMAP_DMA with GET_DIRTY_BITMAP, EFAULT: vfio_dma_do_unmap() unmaps dma by dma and
 *   stops at the first update_user_bitmap() that faults; the dmas before it are gone and
 *   their pages unpinned and uncharged (partial-effects.trace). Only the invariants apply.
 * - type1 dma_rw write, any errno: vfio_iommu_type1_dma_rw() copies chunk by chunk (one per
 *   dma) and marks each chunk dirty after it is copied; a later chunk that fails (no dma:
 *   EINVAL, read-only: EPERM, fault: EFAULT) leaves the earlier ones written and dirty.
 *   Bitmap contents may differ.
 * - type1 vfio_pin_pages, any errno: each page pinned while tracking is bitmap_set() as it
 *   is pinned; pin_unwind unpins the earlier pages but leaves their bits set (6.1
 *   vfio_iommu_type1_pin_pages). Bitmap contents may differ.
 * - vhost-vdpa use_va UPDATE whose first chunk fails (find_vma finds nothing): the unwind
 *   vhost_vdpa_unmap(v, iotlb, iova, map_iova - iova) runs with size 0, so
 *   vhost_vdpa_iotlb_unmap() gets last = iova + 0 - 1 (u64): with iova 0 that is
 *   [0, U64_MAX] and every entry of the address space goes; otherwise the interval-tree
 *   query [iova, iova-1] returns the entries that straddle iova. The model does the same
 *   u64 arithmetic (vdpa.ts unmap()); so entries overlapping that query may vanish.
 * - vhost-vdpa UPDATE and BATCH_BEGIN create the address space before the message is
 *   checked (vhost_vdpa_process_iotlb_msg -> vhost_vdpa_find_alloc_as), so a failing one
 *   may leave a new, empty IOTLB (see test/vhost/vdpa-property.test.ts).
 *
 * - Answers that cannot be written back (the struct is readable but not writable: "rocontent"):
 *   type1 UNMAP_DMA copies `size` out after vfio_dma_do_unmap() succeeded, so the
 *   mappings are gone and the ioctl says EFAULT; iommufd IOAS_MAP / IOAS_UNMAP respond
 *   after the mapping change (iommufd_ioas_map/unmap: the areas stay changed) and
 *   TEST_CMD DIRTY after marking the D bits. (IOAS_ALLOC, HWPT_ALLOC and MOCK_DOMAIN
 *   unwind in Linux: no exception for them.)
 *
 * - iommufd IOAS_UNMAP, ENOENT: iopt_unmap_iova_range() removes area by area and returns
 *   -ENOENT when it meets an area that crosses the end of the range, keeping the areas it
 *   already removed (recorded on 6.12: test/conformance/linux-6.12-iommufd/).
 *
 * The dirty-page ledgers (type1.ts checkHarvest, iommufd.ts "get") follow the same Linux
 * facts: pages of mappings a failed GET_BITMAP / UNMAP-with-bitmap (EFAULT) may already have
 * reported and cleared leave the ledger; an iommufd harvest only has to report the IOVAs
 * before the first hole in the range (the walk stops there, the ioctl returns 0) whose
 * bitmap byte lies on a page it can pin for writing: since 6.9 iova_bitmap pins lazily, per
 * record, and drops a record whose page cannot be pinned while the driver clears its D bit
 * anyway (recorded on 6.12: test/conformance/linux-6.12-iommufd/mock-dirty.trace,
 * test/oracle/iommufd-bitmap-pin.out), so such IOVAs leave the ledger unreported; clearing a leaf the range only partly covers clears the
 * whole leaf (one D bit per leaf); ENABLE clears everything (iopt_clear_dirty_data).
 *
 * One Linux quirk the invariants accept (a success, not a failure): type1 mappings that end
 * exactly at 2^64. vfio_dma_do_map() only rejects iova + size - 1 < iova, and
 * vfio_find_dma() tests start + size <= dma->iova in u64, so for such a range start + size
 * is 0 and the overlap search goes left: with no IOMMU domain (emulated-only container, empty
 * IOVA list) a second MAP of the same top-of-space range succeeds and two dmas overlap
 * (6.1 and mainline alike). `acceptType1Quirk` drops exactly that overlap report.
 *
 * Everything else (GET_BITMAP ENOMEM included: update_user_bitmap() allocates nothing, so
 * Linux never returns ENOMEM there) must leave the snapshot unchanged.
 */
import { Errno } from "../../src/uapi/errno";
import { VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, VFIO_IOMMU_DIRTY_PAGES, VFIO_IOMMU_UNMAP_DMA } from "../../src/uapi/vfio";
import type { Op } from "./engine";

/** What a failed type1 call may change: nothing, bitmap contents, or anything (invariants only). */
export type Allowance = "none" | "bitmaps" | "any";

export function type1FailureAllowance(op: Op, errno: number): Allowance {
  if (op.k === "unmap" && op.at === "rocontent" && errno === Errno.EFAULT) return "any";
  if (op.k === "rw" && op.write) return "bitmaps";
  if (op.k === "pin") return "bitmaps";
  if (errno !== Errno.EFAULT) return "none";
  if (op.k === "dirty" && op.flags === 4) return "bitmaps";
  if (op.k === "unmap" && ((op.flags as number) & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) !== 0) return "any";
  return "none";
}

/**
 * The same rules for a raw ioctl of a replayed trace (the flags are inside the struct, so
 * by command: a faulting DIRTY_PAGES may only be GET_BITMAP's partial copy-out, a faulting
 * UNMAP_DMA only the bitmap variant's: START/STOP and plain unmaps never copy out).
 */
export function traceFailureAllowance(cmd: number, errno: number): Allowance {
  if (errno !== Errno.EFAULT) return "none";
  if (cmd === VFIO_IOMMU_DIRTY_PAGES) return "bitmaps";
  if (cmd === VFIO_IOMMU_UNMAP_DMA) return "any";
  return "none";
}

/** vhost: the interval-tree query [lo, hi] (u64, hi may be < lo) a failed UPDATE's unwind may remove. */
export function vhostUpdateUnwindRange(iova: bigint): [bigint, bigint] {
  return [iova, BigInt.asUintN(64, iova - 1n)];
}

/** vhost: whether a failed message may have created the (empty) address space `asid`. */
export function vhostMayCreateAs(msgType: number): boolean {
  return msgType === 2 /* UPDATE */ || msgType === 5 /* BATCH_BEGIN */;
}

/** iommufd: whether a failed call may have changed the state (only the write-back cases above). */
export function iommufdFailureAllowance(op: Op, errno: number): "none" | "any" {
  if (op.k === "unmap" && errno === Errno.ENOENT) return "any";
  if (errno !== Errno.EFAULT || op.at !== "rocontent") return "none";
  return op.k === "map" || op.k === "unmap" || op.k === "dirty" ? "any" : "none";
}

/** Whether an invariant report of test/type1/state.ts is the wrap-at-2^64 overlap quirk above. */
export function acceptType1Quirk(report: string, dmas: ReadonlyArray<{ iova: bigint; size: bigint }>): boolean {
  const m = /^overlap at ([0-9a-f]+)$/.exec(report);
  if (!m) return false;
  const at = BigInt(`0x${m[1]}`);
  return dmas.some((d) => d.iova <= at && d.iova + d.size === 1n << 64n);
}
