/**
 * The decoded form of one iommufd ioctl, shared by the /dev/iommu handlers (iommufd.ts) and
 * the selftest's IOMMU_TEST_CMD (selftest.ts): struct iommufd_ucmd.
 */
import type { UserAccess } from "../process/file";

/** One decoded command: its bytes (kernel-sized), the user's size, and where it lives. */
export interface Ucmd {
  task: UserAccess;
  arg: bigint;
  userSize: number;
  buf: Uint8Array;
  dv: DataView;
}
