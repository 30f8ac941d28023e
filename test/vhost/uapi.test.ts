/**
 * Golden values printed by gcc from <linux/vhost.h> (bookworm linux-libc-dev) on x86-64:
 * ioctl numbers, sizes and offsets. VHOST_NEW_OWNER is the RFC's _IO(VHOST_VIRTIO, 0x27).
 */
import * as u from "../../src/uapi/vhost";

test("ioctl numbers match <linux/vhost.h>", () => {
  expect(u.VHOST_SET_OWNER).toBe(0xaf01);
  expect(u.VHOST_SET_BACKEND_FEATURES).toBe(0x4008af25);
  expect(u.VHOST_GET_BACKEND_FEATURES).toBe(0x8008af26);
  expect(u.VHOST_VDPA_GET_IOVA_RANGE).toBe(0x8010af78);
  expect(u.VHOST_VDPA_GET_AS_NUM).toBe(0x8004af7a);
  expect(u.VHOST_NEW_OWNER).toBe(0xaf27);
});

test("vhost_msg_v2 layout: 72 bytes, iotlb at 8, perm at 8+24, type at 8+25", () => {
  expect(u.VHOST_MSG_SIZE).toBe(72);
  expect(u.VHOST_MSG_IOTLB_OFFSET).toBe(8);
  expect(u.VHOST_IOTLB_MSG_SIZE).toBe(32);
  const b = u.encodeVhostMsgV2({
    type: u.VHOST_IOTLB_MSG_V2,
    asid: 0x01020304,
    iotlb: { iova: 0x1122334455667788n, size: 0x10n, uaddr: 0xffff_ffff_ffff_ffffn, perm: 3, type: u.VhostIotlbType.UPDATE },
  });
  expect(Array.from(b.subarray(0, 8))).toEqual([2, 0, 0, 0, 4, 3, 2, 1]);
  expect(Array.from(b.subarray(8, 16))).toEqual([0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
  expect([b[8 + 24], b[8 + 25]]).toEqual([3, 2]);
  expect(u.decodeIotlbMsg(b.subarray(8, 40))).toEqual({
    iova: 0x1122334455667788n,
    size: 0x10n,
    uaddr: 0xffff_ffff_ffff_ffffn,
    perm: 3,
    type: 2,
  });
});
