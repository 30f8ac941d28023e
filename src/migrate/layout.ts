/**
 * Guest RAM as a VMM lays it out and maps it for DMA: RAM below the 32-bit PCI hole at
 * guest-physical 0, the rest above 4 GiB (QEMU's i440fx split: up to 3 GiB low). With no
 * vIOMMU, IOVA = guest-physical address, and the VMM issues one MAP_DMA per RAM region.
 *
 * Two index spaces meet here: IOVA (what the IOMMU sees, with the hole) and RAM pages
 * (QEMU's ram_addr_t in 4 KiB target pages, contiguous, what migration sends).
 */

/** Migration and dirty-bitmap granule: the 4 KiB target page (TARGET_PAGE_SIZE). */
export const PAGE_SIZE = 4096;
/** log2(PAGE_SIZE). */
export const PAGE_SHIFT = 12;
/** Start of the 32-bit PCI hole: guest RAM below it stops at 3 GiB. */
export const LOW_RAM_MAX = 3 * 2 ** 30;
/** Where RAM resumes above the hole. */
export const HIGH_RAM_BASE = 4 * 2 ** 30;

/** One contiguous RAM region, mapped for DMA as one type1/IOAS mapping. */
export interface RamRegion {
  /** `below-4g` or `above-4g`. */
  readonly name: string;
  /** IOVA (= guest-physical address) of the first byte. */
  readonly iova: number;
  /** Size in bytes (a multiple of the mapping page size). */
  readonly bytes: number;
  /** First RAM page (4 KiB) of the region in migration order. */
  readonly ramPage: number;
  /** Number of 4 KiB pages. */
  readonly pages: number;
}

/** The guest's RAM regions and the conversions between IOVA and RAM pages. */
export class GuestLayout {
  /** Regions in ascending IOVA (and RAM page) order. */
  readonly regions: readonly RamRegion[];
  /** Total RAM pages (4 KiB). */
  readonly ramPages: number;

  /**
   * @param guestBytes total RAM; must be a positive multiple of `mappingPageSize`
   * @param mappingPageSize host page backing the RAM (4 KiB, 2 MiB, 1 GiB): the largest IOMMU
   *   leaf the mappings can use, so also the granule of hardware dirty bits
   */
  constructor(readonly guestBytes: number, readonly mappingPageSize: number) {
    const low = Math.min(guestBytes, LOW_RAM_MAX);
    const regions: RamRegion[] = [{ name: "below-4g", iova: 0, bytes: low, ramPage: 0, pages: low / PAGE_SIZE }];
    if (guestBytes > low) {
      const high = guestBytes - low;
      regions.push({ name: "above-4g", iova: HIGH_RAM_BASE, bytes: high, ramPage: low / PAGE_SIZE, pages: high / PAGE_SIZE });
    }
    this.regions = regions;
    this.ramPages = guestBytes / PAGE_SIZE;
  }

  /** 4 KiB pages per mapping page (per IOMMU leaf): 1, 512 or 262144. */
  get pagesPerLeaf(): number {
    return this.mappingPageSize / PAGE_SIZE;
  }

  /** The region holding RAM page `page`. */
  regionOf(page: number): RamRegion {
    const r = this.regions;
    return r.length > 1 && page >= r[1].ramPage ? r[1] : r[0];
  }

  /** IOVA of RAM page `page`. */
  iovaOf(page: number): number {
    const r = this.regionOf(page);
    return r.iova + (page - r.ramPage) * PAGE_SIZE;
  }
}

/**
 * Why a guest size / page size pair cannot be laid out, or null when it can. The low
 * region ends at min(size, 3 GiB), so 3 GiB must also be a multiple of the page size.
 */
export function layoutError(guestBytes: number, mappingPageSize: number): string | null {
  if (![PAGE_SIZE, 2 ** 21, 2 ** 30].includes(mappingPageSize)) return "mapping page size must be 4K, 2M or 1G";
  if (!Number.isInteger(guestBytes) || guestBytes <= 0) return "guest size must be positive";
  if (guestBytes % mappingPageSize !== 0) return `guest size must be a multiple of the mapping page size`;
  return null;
}
