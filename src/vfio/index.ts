/**
 * vfio: the VFIO device fd and what the VFIO core does with it, above the process, uapi
 * and iommu layers and below trace, migrate and the CLI (nothing here imports them).
 *
 * It owns:
 * - the device fd (`struct vfio_device_file`): VFIO_DEVICE_GET_INFO and every other
 *   device ioctl routed to the driver, VFIO_DEVICE_FEATURE with vfio_check_feature()'s
 *   PROBE / GET / SET rules and argsz checks, the cdev's BIND_IOMMUFD gate (the iommufd side
 *   is injected from above, so this folder never imports iommufd);
 * - device features: MIGRATION, MIG_DEVICE_STATE, MIG_DATA_SIZE, DMA_LOGGING_START / STOP
 *   / REPORT, each per kernel version (profile.ts: 6.1 lacks PRE_COPY and MIG_DATA_SIZE);
 * - the migration uAPI v2 state machine (mig-fsm.ts: vfio_mig_get_next_state and its
 *   table), and the data_fd a saving or resuming arc installs in the calling process;
 * - the DMA-logging core: START's range checks into an interval tree (LOG_MAX_RANGES,
 *   alignment, overflow, overlap), the chosen page size written back, REPORT through
 *   `iova_bitmap` into the caller's bitmap (bits only ever set);
 * - the driver contract (driver.ts: `struct vfio_migration_ops`, `struct vfio_log_ops`)
 *   and one driver, mtty.ts (the kernel's mtty sample), recorded against Linux 6.12;
 * - `VfioDevice` (device.ts), the typed API over a device fd, errors as values.
 */
export type { VfioDeviceDriver, VfioMigrationOps, VfioLogOps, VfioLogRange, IovaBitmapSet, VfioMigrationFile } from "./driver";
export { vfioMigGetNextState, vfioMigrationSetState, isSavingState } from "./mig-fsm";
export type { VfioMigrationStepper } from "./mig-fsm";
export { VFIO_CORE_LINUX_6_1, VFIO_CORE_LINUX_6_12, VFIO_CORE_PROFILES } from "./profile";
export type { VfioCoreProfile } from "./profile";
export { UserIovaBitmap, userPageWritable } from "./iova-bitmap";
export { VfioCoreDevice, VfioDeviceFd, vfioCheckFeature, parseLogRanges } from "./vfio-main";
export type { VfioIommufdBinding, VfioDeviceAccess, VfioGroupState } from "./vfio-main";
export { MttyDevice, MttyMigrationFile, MTTY_MAGIC, MTTY_HEADER_SIZE, MTTY_PORT_SIZE } from "./mtty";
export type { MttyOptions } from "./mtty";
export { VfioDevice, installVfioDevice } from "./device";
export type { VfioDeviceInfo, DmaLogRange, PrecopyInfoResult, MigStateArg } from "./device";
export { Mlx5Device, Mlx5MigrationFile, vfioCombineIovaRanges, mlx5ImageByte, MLX5_DEFAULT_CAPS, MLX5_MIGF_HEADER_SIZE } from "./mlx5";
export type { Mlx5Options, Mlx5PageTrackCaps, Mlx5DmaOutcome } from "./mlx5";
