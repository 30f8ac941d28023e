/**
 * What QEMU hands to DMA_LOGGING_START, and when it uses device DMA logging at all, as pure
 * functions (from QEMU's hw/vfio listener code: vfio_dirty_tracking_init,
 * vfio_dirty_tracking_update_range, vfio_device_feature_dma_logging_start_create,
 * vfio_container_devices_dirty_tracking_is_supported / vfio_devices_all_device_dirty_tracking).
 *
 * QEMU does not send one range per mapping: it walks the address space once at
 * log_global_start and folds every mapped section into at most three spans, min..max of
 * the sections ending at or below 4 GiB ("32-bit"), of the others ("64-bit"), and of the
 * vfio-pci BARs (P2P mappings) at or above 4 GiB ("pci64", the relocatable pci-hole64, so
 * that firmware putting it at the end of the address space does not make one huge span).
 * Everything between the sections of a span is tracked too; a mapping added after START
 * is not re-armed (the span is computed once).
 */
import type { DmaLogRange } from "../vfio";

const UINT32_MAX = 0xffffffffn;
const UINT64_MAX = (1n << 64n) - 1n;

/** One mapped MemoryRegionSection as the tracking listener sees it: [iova, end], end inclusive. */
export interface DirtyTrackingSection {
  readonly iova: bigint;
  /** The last byte (vfio_get_section_iova_range's end is inclusive). */
  readonly end: bigint;
  /** vfio_section_is_vfio_pci(): a BAR of a vfio-pci device of the container. */
  readonly vfioPci?: boolean;
}

/** VFIODirtyRanges: the three spans (a max of 0 means "none"). */
export interface VfioDirtyRanges {
  min32: bigint;
  max32: bigint;
  min64: bigint;
  max64: bigint;
  minpci64: bigint;
  maxpci64: bigint;
}

/** vfio_dirty_tracking_init()'s starting values. */
export function vfioDirtyRangesInit(): VfioDirtyRanges {
  return { min32: UINT32_MAX, max32: 0n, min64: UINT64_MAX, max64: 0n, minpci64: UINT64_MAX, maxpci64: 0n };
}

/**
 * vfio_dirty_tracking_update_range(): folds one section into its span. A vfio-pci
 * section starting at or above UINT32_MAX goes to pci64; otherwise a section ending at
 * or below UINT32_MAX to 32-bit, any other (including one straddling 4 GiB) to 64-bit.
 */
export function vfioDirtyTrackingUpdateRange(r: VfioDirtyRanges, iova: bigint, end: bigint, updatePci: boolean): VfioDirtyRanges {
  const out = { ...r };
  let minK: "min32" | "min64" | "minpci64";
  let maxK: "max32" | "max64" | "maxpci64";
  if (updatePci && iova >= UINT32_MAX) {
    minK = "minpci64";
    maxK = "maxpci64";
  } else if (end <= UINT32_MAX) {
    minK = "min32";
    maxK = "max32";
  } else {
    minK = "min64";
    maxK = "max64";
  }
  if (out[minK] > iova) out[minK] = iova;
  if (out[maxK] < end) out[maxK] = end;
  return out;
}

/** vfio_dirty_tracking_init(): every section folded, in the order the listener sees them. */
export function vfioDirtyTrackingInit(sections: readonly DirtyTrackingSection[]): VfioDirtyRanges {
  return sections.reduce((r, s) => vfioDirtyTrackingUpdateRange(r, s.iova, s.end, s.vfioPci ?? false), vfioDirtyRangesInit());
}

/**
 * vfio_device_feature_dma_logging_start_create()'s ranges: 32-bit, 64-bit, pci64, each
 * present when its max is non-zero, length max - min + 1 — at most three, in that order.
 * (They are not checked for overlap: a pci64 BAR inside the 64-bit span gives ranges the
 * kernel refuses with EINVAL, as it would from QEMU.)
 */
export function vfioDmaLoggingStartRanges(t: VfioDirtyRanges): DmaLogRange[] {
  const out: DmaLogRange[] = [];
  if (t.max32) out.push({ iova: t.min32, length: (t.max32 - t.min32 + 1n) & UINT64_MAX });
  if (t.max64) out.push({ iova: t.min64, length: (t.max64 - t.min64 + 1n) & UINT64_MAX });
  if (t.maxpci64) out.push({ iova: t.minpci64, length: (t.maxpci64 - t.minpci64 + 1n) & UINT64_MAX });
  return out;
}

/** The whole computation: sections in, DMA_LOGGING_START's ranges out. */
export function qemuDmaLoggingRanges(sections: readonly DirtyTrackingSection[]): DmaLogRange[] {
  return vfioDmaLoggingStartRanges(vfioDirtyTrackingInit(sections));
}

/** What QEMU knows of one VFIO device for the choice. */
export interface QemuVfioDeviceDirtySupport {
  /** vbasedev->dirty_pages_supported: the device answered DMA_LOGGING_START's PROBE. */
  readonly dirtyPagesSupported: boolean;
  /** x-device-dirty-page-tracking=off (ON_OFF_AUTO_OFF) forces it off; default auto. */
  readonly deviceDirtyPageTracking?: "auto" | "off";
}

/** How QEMU tracks the pages VFIO devices dirty. */
export type QemuDirtyTrackingChoice =
  /** DMA_LOGGING_START/REPORT on every device. */
  | "device"
  /** The container's IOMMU dirty tracking (type1 DIRTY_PAGES or iommufd's HWPT). */
  | "container"
  /** Neither: QEMU adds a migration blocker (unless migration was forced on). */
  | "none";

/**
 * vfio_container_devices_dirty_tracking_is_supported() (vfio_devices_all_device_dirty_tracking
 * in older QEMU): true only when every device supports DMA logging and none has it
 * switched off. An empty container counts as supported (the loop finds no objection).
 */
export function vfioDevicesAllDeviceDirtyTracking(devices: readonly QemuVfioDeviceDirtySupport[]): boolean {
  return devices.every((d) => d.deviceDirtyPageTracking !== "off" && d.dirtyPagesSupported);
}

/**
 * vfio_listener_log_global_start()'s branch: device logging when every device supports
 * it, else the container's dirty tracking when it has one, else none (the blocker
 * vfio_migration_realize adds for a device without either).
 */
export function qemuDirtyTrackingChoice(devices: readonly QemuVfioDeviceDirtySupport[], containerDirtyTracking: boolean): QemuDirtyTrackingChoice {
  if (vfioDevicesAllDeviceDirtyTracking(devices)) return "device";
  return containerDirtyTracking ? "container" : "none";
}
