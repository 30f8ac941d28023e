/**
 * What the VFIO core of a kernel version offers for the device fd. Linux 6.1 has the
 * migration uAPI v2 (5.18) and DMA logging (6.1) but not PRE_COPY, PRE_COPY_P2P,
 * VFIO_MIG_GET_PRECOPY_INFO or VFIO_DEVICE_FEATURE_MIG_DATA_SIZE (all 6.2), and answers
 * EINVAL for a feature nobody handles (6.12: ENOTTY, since "vfio: Return -ENOTTY for
 * unsupported device feature"). Checked against Debian's 6.1.192 vfio.ko: its BTF has
 * vfio_device_feature_migration, _mig_state and the three dma_logging structs, and neither
 * vfio_precopy_info nor vfio_device_feature_mig_data_size.
 */
import { Errno } from "../uapi/errno";

/** A kernel's VFIO core behaviour for the device fd. */
export interface VfioCoreProfile {
  readonly name: string;
  /** enum vfio_device_mig_state's size: 6 (no PRE_COPY states) or 8. */
  readonly numStates: number;
  /** Whether VFIO_DEVICE_FEATURE_MIG_DATA_SIZE exists. */
  readonly migDataSize: boolean;
  /** What VFIO_DEVICE_FEATURE answers for a feature neither the core nor the driver handles. */
  readonly unknownFeatureErrno: number;
  /**
   * iova_bitmap's pinning: "upfront" (6.1: each chunk of the user bitmap is pinned before
   * the driver runs on it; a page that cannot be pinned is the REPORT's EFAULT) or "lazy"
   * (6.9+: pinned as bits are set; bits for pages that cannot be pinned are dropped, the
   * REPORT still succeeds).
   */
  readonly iovaBitmapPinning: "upfront" | "lazy";
}

/** The VFIO core of Linux 6.1: no PRE_COPY, PRECOPY_INFO or MIG_DATA_SIZE; `iova_bitmap` pins its window up front. */
export const VFIO_CORE_LINUX_6_1: VfioCoreProfile = {
  name: "linux-6.1",
  numStates: 6,
  migDataSize: false,
  unknownFeatureErrno: Errno.EINVAL,
  iovaBitmapPinning: "upfront",
};

/** The VFIO core of Linux 6.12 (recorded on the mtty sample): PRE_COPY, PRECOPY_INFO, MIG_DATA_SIZE; lazy `iova_bitmap` pinning. */
export const VFIO_CORE_LINUX_6_12: VfioCoreProfile = {
  name: "linux-6.12",
  numStates: 8,
  migDataSize: true,
  unknownFeatureErrno: Errno.ENOTTY,
  iovaBitmapPinning: "lazy",
};

/** The profiles by name. */
export const VFIO_CORE_PROFILES: Readonly<Record<string, VfioCoreProfile>> = {
  "linux-6.1": VFIO_CORE_LINUX_6_1,
  "linux-6.12": VFIO_CORE_LINUX_6_12,
};
