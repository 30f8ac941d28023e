/**
 * vhost: the vhost device IOTLB as vhost-vdpa exposes it to userspace. Owns the IOTLB
 * interval tree (iotlb.ts), the vhost-vdpa device file with the optional live-update RFC
 * (vdpa.ts), the vdpa_sim-like parent whose set_map copies device DMA uses (parent.ts),
 * the owner's address space as vhost sees it (vma.ts), the typed userspace API
 * (api.ts), and the RFC's live-update flow between two simulated VMM processes with a
 * device writing throughout (live-update.ts). The byte layouts and ioctl numbers live in ../uapi/vhost.ts.
 */
export { VhostIotlb, U64_MAX, VHOST_IOTLB_FLAG_RETIRE } from "./iotlb";
export type { VhostIotlbMap } from "./iotlb";
export { VhostVdpa, vhostVdpaOpener } from "./vdpa";
export type { VhostVdpaOptions } from "./vdpa";
export { VdpaSimParent } from "./parent";
export type { SetMapCall, DmaResult } from "./parent";
export type { VhostVma, VmaSource, VdpaMapFile } from "./vma";
export { VhostIotlbApi, fileWriter } from "./api";
export { LiveUpdateWorld, LiveDevice, DEFAULT_LAYOUT, DEFAULT_RAM_SIZE } from "./live-update";
export type { GuestRegion, Vmm, StepResult, LiveUpdateOptions, DeviceWrite, LedgerCheck } from "./live-update";
export type { VhostMsgWriter, IotlbResult, IotlbUpdate, IotlbInvalidate, IotlbRemap, IotlbLookupSource } from "./api";
