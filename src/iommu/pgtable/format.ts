/**
 * The modelled I/O page-table formats and their PTE bits (mirrors assembly/pgtable/format.ts;
 * exported so tests and tools can decode raw PTEs).
 */

/** AMD IOMMU v1, Intel VT-d second stage, ARM LPAE stage 1 (4 KiB granule). */
export type PtFormat = "amd-v1" | "intel-ss" | "arm-lpae-s1";

/** Every format, in the order of their numeric codes. */
export const PT_FORMATS: readonly PtFormat[] = ["amd-v1", "intel-ss", "arm-lpae-s1"];

/** Numeric format code the Wasm core uses. */
export function formatCode(f: PtFormat): number {
  return PT_FORMATS.indexOf(f);
}

/** IOMMU_READ (include/linux/iommu.h): the device may read through the mapping. */
export const IOMMU_READ = 1;
/** IOMMU_WRITE (include/linux/iommu.h): the device may write through the mapping. */
export const IOMMU_WRITE = 2;

/** Table flag: the hardware sets A/D bits (AMD DTE.HAD, Intel PASID-entry SSADE). */
export const PT_FLAG_TRACK = 1;
/** Table flag: ARM HTTU hardware dirty (IO_PGTABLE_QUIRK_ARM_HD): writable maps get DBM. */
export const PT_FLAG_HD = 2;

/** read_and_clear_dirty flag IOMMU_DIRTY_NO_CLEAR (= IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR). */
export const IOMMU_DIRTY_NO_CLEAR = 1;

/** PTE bit positions, per format (what the Wasm walkers read and write). */
export const PTE_BITS = {
  "amd-v1": { present: 0, accessed: 5, dirty: 6, nextLevelShift: 9, fc: 60, ir: 61, iw: 62 },
  "intel-ss": { read: 0, write: 1, ps: 7, accessed: 8, dirty: 9 },
  "arm-lpae-s1": { valid: 0, apUnpriv: 6, apRdonly: 7, af: 10, ng: 11, dbm: 51 },
} as const;

/** Powers of two from 2^lo to 2^hi inclusive, as a page-size bitmap (exact up to 2^52). */
export function pgsizeRange(lo: number, hi: number): number {
  let m = 0;
  for (let b = lo; b <= hi; b++) m += 2 ** b;
  return m;
}

/** 4 KiB | 2 MiB | 1 GiB: what Intel second stage and ARM LPAE (4 KiB granule) advertise. */
export const PGSIZES_4K_2M_1G = 2 ** 12 + 2 ** 21 + 2 ** 30;

/**
 * AMD v1: every power of two from 4 KiB to 256 GiB (AMD_IOMMU_PGSIZES without the sizes
 * above 256 GiB, which the model does not implement); sizes that are not 4K/2M/1G are
 * written as replicated NextLevel-7 PTEs.
 */
export const PGSIZES_AMD_V1 = pgsizeRange(12, 38);

/** Default page-size bitmap of a format. */
export function defaultPgsizes(f: PtFormat): number {
  return f === "amd-v1" ? PGSIZES_AMD_V1 : PGSIZES_4K_2M_1G;
}

/** Default starting depth: AMD starts at 3 levels and grows; Intel/ARM use 4 (48-bit IOVA). */
export function defaultLevels(f: PtFormat): number {
  return f === "amd-v1" ? 3 : 4;
}
