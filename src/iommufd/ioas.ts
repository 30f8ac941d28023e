/**
 * The iommufd object model: IOAS (io_pagetable: areas + the domains kept in sync with
 * them), paging HWPTs (a PgtableDomain), bound devices and selftest objects.
 *
 * Model simplifications (documented, not hidden): the "physical address" an area maps is
 * its user VA (no page pinning or locked-memory accounting in iommufd), and IOVAs must
 * stay below 2^53 (the Wasm page-table boundary).
 */
import { Errno } from "../uapi/errno";
import { PgtableDomain } from "../iommu/hw";
import type { PtFormat } from "../iommu/pgtable";

/**
 * The IOMMU behind a device bound with IommufdCtx.bindDevice() (not a selftest mock): the
 * page-table format and geometry its driver's domain_alloc_paging gives every paging
 * domain it attaches to.
 */
export interface DeviceIommu {
  /** PTE format of the driver's paging domains. */
  format: PtFormat;
  /** domain->pgsize_bitmap. */
  pgsizeBitmap: number;
  /** domain->geometry.aperture_start / aperture_end (inclusive). */
  apertureStart: bigint;
  apertureLast: bigint;
  /** Whether the IOMMU can track dirty pages (IOMMU_HW_CAP_DIRTY_TRACKING). */
  dirtyTracking: boolean;
}

/** One iopt_area: a contiguous mapping of user memory. */
export interface Area {
  iova: bigint;
  length: bigint;
  uaddr: bigint;
  prot: number;
}

/** An I/O address space (struct iommufd_ioas). */
export interface IoasObj {
  kind: "ioas";
  id: number;
  /** Sorted by IOVA, non-overlapping. */
  areas: Area[];
  /** Paging HWPTs filled from this IOAS. */
  hwpts: Set<HwptObj>;
}

/** A paging hardware page table (struct iommufd_hwpt_paging). */
export interface HwptObj {
  kind: "hwpt";
  id: number;
  ioas: IoasObj;
  domain: PgtableDomain;
  /** Created by attaching a device straight to an IOAS (destroyed with its last device). */
  auto: boolean;
  devices: Set<DeviceObj>;
}

/** A bound device (struct iommufd_device): a selftest mock device, or one bound with its IOMMU. */
export interface DeviceObj {
  kind: "device";
  id: number;
  /** MOCK_FLAGS_DEVICE_* (0 for a non-mock device). */
  flags: number;
  /** The device's IOMMU when it is not a selftest mock (absent: mock domain geometry). */
  iommu?: DeviceIommu;
  hwpt: HwptObj | null;
  stdev: SelftestObj | null;
}

/** The selftest's IOMMUFD_OBJ_SELFTEST (owns a mock device). */
export interface SelftestObj {
  kind: "selftest";
  id: number;
  idev: DeviceObj;
}

/** Any object in the context's table. */
export type IommufdObj = IoasObj | HwptObj | DeviceObj | SelftestObj;

/** iopt->iova_alignment: the largest smallest-page-size of the domains (1 without domains). */
export function iovaAlignment(ioas: IoasObj): bigint {
  let a = 1;
  for (const h of ioas.hwpts) a = Math.max(a, h.domain.table.minPageSize);
  return BigInt(a);
}

/** Maps one area into a domain; -errno on failure (nothing left mapped). */
export function mapArea(domain: PgtableDomain, a: Area): number {
  return domain.map(Number(a.iova), Number(a.uaddr), Number(a.length), a.prot);
}

/** Unmaps one area from a domain. */
export function unmapArea(domain: PgtableDomain, a: Area): void {
  domain.unmap(Number(a.iova), Number(a.length));
}

/** iopt_table_add_domain(): fills a new domain with every area; on failure undoes. */
export function fillDomain(domain: PgtableDomain, ioas: IoasObj): number {
  for (let i = 0; i < ioas.areas.length; i++) {
    const r = mapArea(domain, ioas.areas[i]);
    if (r < 0) {
      for (let j = 0; j < i; j++) unmapArea(domain, ioas.areas[j]);
      return r;
    }
  }
  return 0;
}

/**
 * iopt_map_user_pages() into every domain of the IOAS: all or nothing. The IOVA range
 * must be free (EEXIST) and aligned (EINVAL).
 */
export function ioasMap(ioas: IoasObj, a: Area): number {
  if (a.length === 0n) return -Errno.EINVAL;
  const align = iovaAlignment(ioas);
  if (a.iova % align !== 0n || a.length % align !== 0n) return -Errno.EINVAL;
  if (a.iova + a.length > 1n << 53n || a.uaddr + a.length > 1n << 53n) return -Errno.EOVERFLOW;
  for (const b of ioas.areas) if (b.iova < a.iova + a.length && a.iova < b.iova + b.length) return -Errno.EEXIST;
  const done: PgtableDomain[] = [];
  for (const h of ioas.hwpts) {
    const r = mapArea(h.domain, a);
    if (r < 0) {
      for (const d of done) unmapArea(d, a);
      return r;
    }
    done.push(h.domain);
  }
  ioas.areas.push(a);
  ioas.areas.sort((x, y) => (x.iova < y.iova ? -1 : 1));
  return 0;
}

/** The lowest free IOVA (aligned to `align`) that fits `length` bytes, or -1n. */
export function ioasAllocIova(ioas: IoasObj, length: bigint, align: bigint): bigint {
  let cand = align;
  for (const b of ioas.areas) {
    if (cand + length <= b.iova) return cand;
    const end = b.iova + b.length;
    if (end > cand) cand = ((end + align - 1n) / align) * align;
  }
  return cand + length <= 1n << 53n ? cand : -1n;
}

/**
 * iopt_unmap_iova(): removes the areas inside [iova, last]; an area crossing either end
 * makes it ENOENT with nothing removed; nothing there is ENOENT. Returns bytes or -errno.
 */
export function ioasUnmap(ioas: IoasObj, iova: bigint, last: bigint): bigint | number {
  const hit = ioas.areas.filter((b) => b.iova <= last && b.iova + b.length - 1n >= iova);
  if (hit.length === 0) return -Errno.ENOENT;
  for (const b of hit) if (b.iova < iova || b.iova + b.length - 1n > last) return -Errno.ENOENT;
  let n = 0n;
  for (const b of hit) {
    for (const h of ioas.hwpts) unmapArea(h.domain, b);
    n += b.length;
  }
  ioas.areas = ioas.areas.filter((b) => !hit.includes(b));
  return n;
}
