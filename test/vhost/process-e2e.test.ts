/**
 * The vhost-vdpa device driven by the simulated process (src/process): open/close through
 * its file table, ioctls with arguments in its memory, messages written from its memory.
 *
 * A use_va parent never maps anonymous memory (vhost_vdpa_va_map skips everything but
 * shared file mappings), so an UPDATE of it succeeds with no entry, exactly as on Linux.
 * The live-update flow over a shared memfd is in live-update.test.ts.
 */
import { Process, PROT_READ, PROT_WRITE } from "../../src/process";
import { Errno } from "../../src/uapi/errno";
import {
  VHOST_GET_BACKEND_FEATURES,
  VHOST_MSG_SIZE,
  VHOST_NEW_OWNER,
  VHOST_SET_BACKEND_FEATURES,
  VHOST_SET_OWNER,
  VhostAccess,
  VhostBackendFeature as F,
  VhostIotlbType as T,
  backendFeatureMask as bit,
} from "../../src/uapi/vhost";
import { VhostVdpa, vhostVdpaOpener } from "../../src/vhost/vdpa";
import { VhostIotlbApi, fileWriter } from "../../src/vhost/api";
import { msgBytes } from "./helpers";

const DEV = "/dev/vhost-vdpa-0";

function proc(dev: VhostVdpa) {
  const p = new Process();
  p.registerDevice(DEV, vhostVdpaOpener(dev));
  const scratch = BigInt(p.mmap(undefined, 4096, PROT_READ | PROT_WRITE).ret);
  const guest = BigInt(p.mmap(undefined, 1 << 20, PROT_READ | PROT_WRITE).ret);
  /** write(fd, msg, 72) from the process's memory (the process model has no write(2) yet). */
  const write = (fd: number, bytes: Uint8Array): number => {
    expect(p.write(scratch, bytes).errno).toBe(0);
    return p.fdget(fd)!.write!(p, scratch, bytes.length);
  };
  return { p, scratch, guest, write };
}

test("open is exclusive through the file table; the last close releases the device", () => {
  const dev = new VhostVdpa();
  const a = proc(dev);
  const fd = a.p.open(DEV);
  expect(fd.errno).toBe(0);
  expect(a.p.open(DEV)).toEqual({ ret: -1, errno: Errno.EBUSY });
  expect(a.p.ioctl(fd.ret, VHOST_SET_OWNER)).toEqual({ ret: 0, errno: 0 });
  expect(a.write(fd.ret, msgBytes(T.BATCH_BEGIN, 0n, 0n))).toBe(VHOST_MSG_SIZE);
  expect(dev.batching).toBe(true);
  expect(a.p.close(fd.ret).errno).toBe(0);
  expect(dev.batching).toBe(false);
  expect(dev.ownerTask).toBeNull();
  expect(a.p.open(DEV).errno).toBe(0);
});

test("backend features are exchanged through the process's memory", () => {
  const dev = new VhostVdpa({ remap: true });
  const a = proc(dev);
  const fd = a.p.open(DEV).ret;
  expect(a.p.ioctl(fd, VHOST_GET_BACKEND_FEATURES, a.scratch).errno).toBe(0);
  const got = new DataView(a.p.read(a.scratch, 8)!.buffer).getBigUint64(0, true);
  expect(got & bit(F.IOTLB_REMAP)).toBe(bit(F.IOTLB_REMAP));
  const want = new Uint8Array(8);
  new DataView(want.buffer).setBigUint64(0, bit(F.IOTLB_MSG_V2) | bit(F.IOTLB_BATCH) | bit(F.IOTLB_REMAP), true);
  a.p.write(a.scratch, want);
  expect(a.p.ioctl(fd, VHOST_SET_BACKEND_FEATURES, a.scratch)).toEqual({ ret: 0, errno: 0 });
  new DataView(want.buffer).setBigUint64(0, 1n << 50n, true);
  a.p.write(a.scratch, want);
  expect(a.p.ioctl(fd, VHOST_SET_BACKEND_FEATURES, a.scratch)).toEqual({ ret: -1, errno: Errno.EOPNOTSUPP });
  expect(dev.backendFeatures).toBe(bit(F.IOTLB_MSG_V2) | bit(F.IOTLB_BATCH) | bit(F.IOTLB_REMAP));
  expect(a.p.ioctl(fd, VHOST_GET_BACKEND_FEATURES, 0x10n)).toEqual({ ret: -1, errno: Errno.EFAULT });
});

test("UPDATE of anonymous private memory succeeds without an entry; of unmapped memory it fails", () => {
  const dev = new VhostVdpa();
  const a = proc(dev);
  const fd = a.p.open(DEV).ret;
  a.p.ioctl(fd, VHOST_SET_OWNER);
  const api = new VhostIotlbApi(fileWriter(a.p.fdget(fd)!, a.p, a.scratch), dev);
  expect(api.update({ iova: 0n, size: 0x10000n, uaddr: a.guest, perm: VhostAccess.RW })).toEqual({ ok: true });
  expect(dev.iotlb(0)!.nmaps).toBe(0);
  expect(dev.setMapCalls.length).toBe(0);
  // Above every VMA: find_vma finds nothing → EINVAL → EFAULT from write.
  expect(api.update({ iova: 0n, size: 0x1000n, uaddr: 0x7fff_ffff_f000n, perm: VhostAccess.RW })).toEqual({
    ok: false,
    errno: Errno.EFAULT,
    errnoName: "EFAULT",
  });
  expect(dev.iotlb(0)!.nmaps).toBe(0);
});

test("ownership is per mm: another process is refused until it takes over with NEW_OWNER", () => {
  const dev = new VhostVdpa({ newOwner: true, remap: true });
  const a = proc(dev);
  const b = proc(dev);
  const fdA = a.p.open(DEV).ret;
  expect(a.p.ioctl(fdA, VHOST_SET_OWNER).errno).toBe(0);
  // The fd reaches b as the same open file (SCM_RIGHTS), not a second open.
  const fdB = a.p.sendFd(fdA, b.p).ret;
  expect(b.write(fdB, msgBytes(T.BATCH_BEGIN, 0n, 0n))).toBe(-Errno.EFAULT);
  expect(b.p.ioctl(fdB, VHOST_SET_OWNER)).toEqual({ ret: -1, errno: Errno.EBUSY });
  expect(a.p.ioctl(fdA, VHOST_NEW_OWNER)).toEqual({ ret: -1, errno: Errno.EBUSY });
  expect(b.p.ioctl(fdB, VHOST_NEW_OWNER)).toEqual({ ret: 0, errno: 0 });
  expect(a.write(fdA, msgBytes(T.BATCH_BEGIN, 0n, 0n))).toBe(-Errno.EFAULT);
  expect(b.write(fdB, msgBytes(T.BATCH_BEGIN, 0n, 0n))).toBe(VHOST_MSG_SIZE);
  // Nothing is mapped (anonymous memory), so a REMAP finds no mapping.
  expect(dev.processIotlbMsg(b.p, 0, { type: T.REMAP, iova: 0n, size: 0x1000n, uaddr: b.guest, perm: 0 })).toBe(-Errno.ENOENT);
  expect(b.write(fdB, msgBytes(T.BATCH_END, 0n, 0n))).toBe(VHOST_MSG_SIZE);
  expect(dev.setMapCalls.length).toBe(1);
  expect(b.write(fdB, msgBytes(T.INVALIDATE, 0n, 0n))).toBe(VHOST_MSG_SIZE);
  // The old process exits: the open file has another reference, so nothing is released.
  a.p.exit();
  expect(dev.ownerTask).toBe(b.p);
  expect(b.write(fdB, msgBytes(T.BATCH_BEGIN, 0n, 0n))).toBe(VHOST_MSG_SIZE);
  expect(b.p.close(fdB).errno).toBe(0);
  expect(dev.ownerTask).toBeNull();
});
