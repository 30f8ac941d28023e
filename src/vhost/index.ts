/**
 * vhost: the vhost device IOTLB as vhost-vdpa exposes it to userspace. Owns the IOTLB
 * interval tree (iotlb.ts), the vhost-vdpa device file with its use_va/set_map parent and
 * the optional live-update RFC (vdpa.ts), and the typed userspace API (api.ts). The byte
 * layouts and ioctl numbers live in ../uapi/vhost.ts.
 */
export { VhostIotlb, U64_MAX, VHOST_IOTLB_FLAG_RETIRE } from "./iotlb";
export type { VhostIotlbMap } from "./iotlb";
export { VhostVdpa, vhostVdpaOpener } from "./vdpa";
export type { VhostVdpaOptions, VhostVma, VmaSource, VdpaMapFile, SetMapCall, DmaResult } from "./vdpa";
export { VhostIotlbApi, fileWriter } from "./api";
export type { VhostMsgWriter, IotlbResult, IotlbUpdate, IotlbInvalidate, IotlbRemap, IotlbLookupSource } from "./api";
