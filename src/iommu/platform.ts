/**
 * Platforms: which IOMMU the machine has (page sizes, aperture, cache coherency), which
 * reserved regions each device reports, and how devices form IOMMU groups. type1 builds its
 * valid-IOVA list from these exactly as vfio_iommu_type1_attach_group() does (reference §11).
 */
import { Errno } from "../uapi/errno";
import type { IommuDomain, IovaRange } from "./domain";
import { RangeDomain } from "./range-domain";
import type { WasmCore } from "../wasm/core";

/** enum iommu_resv_type. */
export enum IommuResvType {
  /** Memory that must stay identity mapped (RMRR). */
  DIRECT = 0,
  /** Like DIRECT, but may be given up for device assignment. */
  DIRECT_RELAXABLE = 1,
  /** Arbitrary "never map here" region. */
  RESERVED = 2,
  /** Hardware MSI doorbell window (x86 0xfee00000). */
  MSI = 3,
  /** Software-managed MSI window: the kernel maps doorbells there (ARM SMMU). */
  SW_MSI = 4,
}

/** struct iommu_resv_region. */
export interface ResvRegion {
  start: bigint;
  length: bigint;
  type: IommuResvType;
}

/** A device behind the IOMMU. */
export interface PlatformDevice {
  name: string;
  /** Regions this device reports through iommu_get_resv_regions(). */
  resv: ResvRegion[];
}

/** An IOMMU group as /dev/vfio/ID. */
export interface PlatformGroup {
  id: number;
  devices: PlatformDevice[];
  /** Emulated (mdev-style) group: no IOMMU domain; DMA goes through vfio_pin_pages. */
  emulated?: boolean;
}

/** The IOMMU hardware's domain parameters. */
export interface IommuParams {
  /** Page sizes, e.g. 0x40201000 (4K | 2M | 1G). */
  pgsizeBitmap: bigint;
  /** domain->geometry aperture, inclusive. */
  aperture: IovaRange;
  /** Whether domains enforce cache coherency (VFIO_DMA_CC_IOMMU). */
  enforceCacheCoherency: boolean;
  /** Whether domains support nesting (iommu_enable_nesting); SET_IOMMU(6) needs it. Default false. */
  nesting?: boolean;
  /** Whether MSIs are isolated (interrupt remapping / ITS); attach needs it unless allow_unsafe_interrupts. */
  msiIsolated: boolean;
}

/** A machine description. */
export interface Platform {
  name: string;
  iommu: IommuParams;
  groups: PlatformGroup[];
  /**
   * Allocates a paging domain (default: a RangeDomain with `iommu`'s parameters). `core` is
   * the container's Wasm core, for domains whose page tables live in linear memory. Null
   * means the allocation failed (ENOMEM).
   */
  createDomain?: (p: IommuParams, core?: WasmCore) => IommuDomain | null;
}

/** The oracle's machine: QEMU q35 with intel-iommu (39-bit), one edu device alone in group 0. */
export function vtdPlatform(): Platform {
  return {
    name: "vtd",
    iommu: {
      pgsizeBitmap: 0x40201000n,
      aperture: { start: 0n, end: (1n << 39n) - 1n },
      enforceCacheCoherency: false,
      msiIsolated: true,
    },
    groups: [{ id: 0, devices: [{ name: "0000:00:03.0", resv: [{ start: 0xfee00000n, length: 0x100000n, type: IommuResvType.MSI }] }] }],
  };
}

/** MSI_IOVA_BASE / MSI_IOVA_LENGTH of the arm-smmu(-v3) drivers. */
export const SMMU_MSI_IOVA_BASE = 0x8000000n;
export const SMMU_MSI_IOVA_LENGTH = 0x100000n;

/** An ARM SMMUv3 machine (48-bit, 4K granule) whose device reports a software MSI window. */
export function smmuPlatform(): Platform {
  return {
    name: "smmu",
    iommu: {
      pgsizeBitmap: 0x40201000n,
      aperture: { start: 0n, end: (1n << 48n) - 1n },
      enforceCacheCoherency: true,
      msiIsolated: true,
    },
    groups: [{ id: 0, devices: [{ name: "0000:01:00.0", resv: [{ start: SMMU_MSI_IOVA_BASE, length: SMMU_MSI_IOVA_LENGTH, type: IommuResvType.SW_MSI }] }] }],
  };
}

/** The named presets. */
export const PLATFORMS: Readonly<Record<string, () => Platform>> = { vtd: vtdPlatform, smmu: smmuPlatform };

/** iommu_domain_alloc() for a platform; null when it fails (ENOMEM). */
export function allocDomain(p: Platform, core?: WasmCore): IommuDomain | null {
  return p.createDomain ? p.createDomain(p.iommu, core) : new RangeDomain(p.iommu);
}

/** iommu_get_group_resv_regions(): the union of the group's devices' regions, sorted by start. */
export function groupResvRegions(g: PlatformGroup): ResvRegion[] {
  return g.devices.flatMap((d) => d.resv.map((r) => ({ ...r }))).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
}

/** vfio_iommu_aper_conflict(): would the new aperture cut off existing windows that hold mappings? */
export function vfioIommuAperConflict(list: readonly IovaRange[], start: bigint, end: bigint, dmaExists: (lo: bigint, hi: bigint) => boolean): boolean {
  if (list.length === 0) return false;
  const first = list[0];
  const last = list[list.length - 1];
  if (start > last.end || end < first.start) return true;
  if (start > first.start && dmaExists(first.start, start - 1n)) return true;
  if (end < last.end && dmaExists(end + 1n, last.end)) return true;
  return false;
}

/** vfio_iommu_resv_conflict(): does any mapping overlap a region that must be excluded? */
export function vfioIommuResvConflict(resv: readonly ResvRegion[], dmaExists: (lo: bigint, hi: bigint) => boolean): boolean {
  return resv.some((r) => r.type !== IommuResvType.DIRECT_RELAXABLE && dmaExists(r.start, r.start + r.length - 1n));
}

/** vfio_iommu_aper_resize(): clip (or create) the list to [start, end]. */
export function vfioIommuAperResize(list: readonly IovaRange[], start: bigint, end: bigint): IovaRange[] {
  if (list.length === 0) return [{ start, end }];
  const out: IovaRange[] = [];
  for (const n of list) {
    if (n.end < start || n.start > end) continue;
    out.push({ start: n.start < start ? start : n.start, end: n.end > end ? end : n.end });
  }
  return out;
}

/** vfio_iommu_resv_exclude(): carve every non-relaxable region out of the list; -EINVAL when nothing is left. */
export function vfioIommuResvExclude(list: readonly IovaRange[], resv: readonly ResvRegion[]): IovaRange[] | number {
  let cur = list.map((n) => ({ ...n }));
  for (const r of resv) {
    if (r.type === IommuResvType.DIRECT_RELAXABLE) continue;
    const a = r.start;
    const b = r.start + r.length - 1n;
    const next: IovaRange[] = [];
    for (const n of cur) {
      if (a > n.end || b < n.start) {
        next.push(n);
        continue;
      }
      if (a > n.start) next.push({ start: n.start, end: a - 1n });
      if (b < n.end) next.push({ start: b + 1n, end: n.end });
    }
    cur = next;
  }
  return cur.length === 0 ? -Errno.EINVAL : cur;
}

/** vfio_iommu_has_sw_msi(): the SW_MSI base when the group has such a region and no hardware MSI window. */
export function vfioIommuHasSwMsi(resv: readonly ResvRegion[]): bigint | null {
  if (resv.some((r) => r.type === IommuResvType.MSI)) return null;
  const sw = resv.find((r) => r.type === IommuResvType.SW_MSI);
  return sw ? sw.start : null;
}
