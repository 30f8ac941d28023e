/**
 * vhost / vhost-vdpa uAPI: include/uapi/linux/vhost.h and vhost_types.h (LP64 layouts),
 * plus the unmerged 2024 "vdpa live update" RFC (S. Sistare) where marked RFC.
 *
 * Kept apart from the VFIO uAPI files so the two subsystems can evolve independently.
 */

/** _IOC(dir, type, nr, size) from include/uapi/asm-generic/ioctl.h, as an unsigned 32-bit number. */
function ioc(dir: number, type: number, nr: number, size: number): number {
  return ((dir << 30) | (size << 16) | (type << 8) | nr) >>> 0;
}
const IOC_NONE = 0;
const IOC_WRITE = 1;
const IOC_READ = 2;

/** ENOBUFS (105): vhost_vdpa_vring_ioctl's answer to a vq index >= nvqs; absent from the shared errno table. */
export const ENOBUFS = 105;

/** The vhost ioctl "magic" (`VHOST_VIRTIO`). */
export const VHOST_VIRTIO = 0xaf;

/** `VHOST_SET_OWNER = _IO(VHOST_VIRTIO, 0x01)`: the caller's mm becomes the device owner. */
export const VHOST_SET_OWNER = ioc(IOC_NONE, VHOST_VIRTIO, 0x01, 0);
/** `VHOST_SET_BACKEND_FEATURES = _IOW(VHOST_VIRTIO, 0x25, __u64)`. */
export const VHOST_SET_BACKEND_FEATURES = ioc(IOC_WRITE, VHOST_VIRTIO, 0x25, 8);
/** `VHOST_GET_BACKEND_FEATURES = _IOR(VHOST_VIRTIO, 0x26, __u64)`. */
export const VHOST_GET_BACKEND_FEATURES = ioc(IOC_READ, VHOST_VIRTIO, 0x26, 8);
/** RFC: `VHOST_NEW_OWNER = _IO(VHOST_VIRTIO, 0x27)`: the caller takes over an owned device. */
export const VHOST_NEW_OWNER = ioc(IOC_NONE, VHOST_VIRTIO, 0x27, 0);
/** `VHOST_VDPA_GET_IOVA_RANGE = _IOR(VHOST_VIRTIO, 0x78, struct vhost_vdpa_iova_range)`. */
export const VHOST_VDPA_GET_IOVA_RANGE = ioc(IOC_READ, VHOST_VIRTIO, 0x78, 16);
/** `VHOST_VDPA_GET_AS_NUM = _IOR(VHOST_VIRTIO, 0x7A, unsigned int)`. */
export const VHOST_VDPA_GET_AS_NUM = ioc(IOC_READ, VHOST_VIRTIO, 0x7a, 4);

/** `struct vhost_iotlb_msg.type` values. */
export const VhostIotlbType = {
  MISS: 1,
  UPDATE: 2,
  INVALIDATE: 3,
  ACCESS_FAIL: 4,
  BATCH_BEGIN: 5,
  BATCH_END: 6,
  /** RFC only (vdpa live update): register a new uaddr for an existing mapping. */
  REMAP: 7,
} as const;

/** `struct vhost_iotlb_msg.perm` values (`VHOST_ACCESS_*`; VHOST_MAP_* in the kernel have the same values). */
export const VhostAccess = { RO: 1, WO: 2, RW: 3 } as const;

/** Header `type` of a `struct vhost_msg` written to the device (the original layout). */
export const VHOST_IOTLB_MSG = 1;
/** Header `type` of a `struct vhost_msg_v2` (with `asid`; needs VHOST_BACKEND_F_IOTLB_MSG_V2 acked). */
export const VHOST_IOTLB_MSG_V2 = 2;

/** Backend feature bit numbers (`VHOST_BACKEND_F_*`); the ioctls carry `1n << bit`. */
export const VhostBackendFeature = {
  IOTLB_MSG_V2: 0x1,
  IOTLB_BATCH: 0x2,
  IOTLB_ASID: 0x3,
  SUSPEND: 0x4,
  RESUME: 0x5,
  ENABLE_AFTER_DRIVER_OK: 0x6,
  DESC_ASID: 0x7,
  IOTLB_PERSIST: 0x8,
  /** RFC: VHOST_NEW_OWNER is supported. */
  NEW_OWNER: 0x9,
  /** RFC V1: VHOST_IOTLB_REMAP is supported. This model's own opt-in bit (never merged). */
  IOTLB_REMAP: 0xa,
} as const;

/** `1n << bit` for a backend feature bit number. */
export function backendFeatureMask(bit: number): bigint {
  return 1n << BigInt(bit);
}

/** sizeof(struct vhost_iotlb_msg) on LP64 (28 on i386; not modelled). */
export const VHOST_IOTLB_MSG_SIZE = 32;
/** sizeof(struct vhost_msg) and sizeof(struct vhost_msg_v2): what a successful write returns. */
export const VHOST_MSG_SIZE = 72;
/** Offset of the `iotlb` union member in both `vhost_msg` and `vhost_msg_v2`. */
export const VHOST_MSG_IOTLB_OFFSET = 8;

/** `struct vhost_iotlb_msg`: iova@0 u64, size@8 u64, uaddr@16 u64, perm@24 u8, type@25 u8. */
export interface VhostIotlbMsg {
  iova: bigint;
  size: bigint;
  uaddr: bigint;
  perm: number;
  type: number;
}

/** A whole message as written to the device file. */
export interface VhostMsgV2 {
  /** Header type: VHOST_IOTLB_MSG_V2 (or VHOST_IOTLB_MSG for the v1 layout). */
  type: number;
  /** Address space id; only read by the kernel when IOTLB_ASID was negotiated. */
  asid: number;
  iotlb: VhostIotlbMsg;
}

/** Decodes the 32 bytes of a `struct vhost_iotlb_msg`. */
export function decodeIotlbMsg(b: Uint8Array): VhostIotlbMsg {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    iova: dv.getBigUint64(0, true),
    size: dv.getBigUint64(8, true),
    uaddr: dv.getBigUint64(16, true),
    perm: dv.getUint8(24),
    type: dv.getUint8(25),
  };
}

/** Encodes a `struct vhost_msg_v2` (72 bytes; padding zero). Values are truncated to their field widths. */
export function encodeVhostMsgV2(msg: VhostMsgV2): Uint8Array {
  const out = new Uint8Array(VHOST_MSG_SIZE);
  const dv = new DataView(out.buffer);
  const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);
  dv.setUint32(0, msg.type >>> 0, true);
  dv.setUint32(4, msg.asid >>> 0, true);
  const o = VHOST_MSG_IOTLB_OFFSET;
  dv.setBigUint64(o + 0, u64(msg.iotlb.iova), true);
  dv.setBigUint64(o + 8, u64(msg.iotlb.size), true);
  dv.setBigUint64(o + 16, u64(msg.iotlb.uaddr), true);
  dv.setUint8(o + 24, msg.iotlb.perm & 0xff);
  dv.setUint8(o + 25, msg.iotlb.type & 0xff);
  return out;
}

/** `struct vhost_vdpa_iova_range { u64 first; u64 last; }` (16 bytes). */
export interface VhostVdpaIovaRange {
  first: bigint;
  last: bigint;
}

/** Encodes a `struct vhost_vdpa_iova_range`. */
export function encodeIovaRange(r: VhostVdpaIovaRange): Uint8Array {
  const out = new Uint8Array(16);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, r.first, true);
  dv.setBigUint64(8, r.last, true);
  return out;
}
