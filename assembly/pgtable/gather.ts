// struct iommu_iotlb_gather in linear memory: the union of IOVA ranges whose cached
// translations must be invalidated, plus the table pages that may only be reused after
// that invalidation. Layout (32 bytes):
//   0 start u64   (ULONG_MAX when empty, as iommu_iotlb_gather_init sets it)
//   8 end   u64   (inclusive)
//  16 pgsize u64
//  24 freelist usize (table pages waiting for the flush, linked through slot 0)
import { tablePageFree } from "./pages";

export const GATHER_BYTES: usize = 32;

/** iommu_iotlb_gather_init(). */
export function gatherInit(g: usize): void {
  store<u64>(g, <u64>-1);
  store<u64>(g, 0, 8);
  store<u64>(g, 0, 16);
  store<usize>(g, 0, 24);
}

/** iommu_iotlb_gather_add_range(): pure union, may cover holes. */
// @ts-ignore: decorator
@inline export function gatherAddRange(g: usize, iova: u64, size: u64): void {
  if (g == 0) return;
  const last = iova + size - 1;
  if (iova < load<u64>(g)) store<u64>(g, iova);
  if (last > load<u64>(g, 8)) store<u64>(g, last, 8);
}

/** Records the leaf size last added (iommu_iotlb_gather_add_page's pgsize). */
export function gatherSetPgsize(g: usize, size: u64): void {
  if (g != 0) store<u64>(g, size, 16);
}

/** Queues a table page to be freed once the IOTLB has been flushed. */
export function gatherDeferFree(g: usize, page: usize): void {
  if (g == 0) {
    tablePageFree(page);
    return;
  }
  store<usize>(page, load<usize>(g, 24));
  store<usize>(g, page, 24);
}

/** After the flush: frees the queued table pages and re-initialises the gather. */
export function gatherRelease(g: usize): void {
  let p = load<usize>(g, 24);
  while (p != 0) {
    const next = load<usize>(p);
    tablePageFree(p);
    p = next;
  }
  gatherInit(g);
}

/** First IOVA in the gather, or -1 when it is empty. */
export function gatherStart(g: usize): f64 {
  const s = load<u64>(g);
  const e = load<u64>(g, 8);
  return s > e ? -1 : <f64>s;
}

/** Last IOVA (inclusive) in the gather, or -1 when it is empty. */
export function gatherEnd(g: usize): f64 {
  const s = load<u64>(g);
  const e = load<u64>(g, 8);
  return s > e ? -1 : <f64>e;
}
